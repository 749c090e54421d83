name: string
maxelems: number
ttl: number
replicated: boolean, optional
