type: numeric
key: string
