name: string
key: string, optional
