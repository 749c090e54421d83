original: mixed
charset: string, optional
dotstuffing: boolean
