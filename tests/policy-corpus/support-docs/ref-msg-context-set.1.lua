type: numeric
key: string
value: string
