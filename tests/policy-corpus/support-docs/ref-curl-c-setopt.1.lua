option: numeric
value: mixed
