name: string
value: string
mode: string, optional
