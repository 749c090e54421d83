value: string
type: string, optional
charset: string, optional
