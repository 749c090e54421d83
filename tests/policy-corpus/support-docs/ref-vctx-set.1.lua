type: numeric
key: string
value: mixed
