name: string
address: string, optional
