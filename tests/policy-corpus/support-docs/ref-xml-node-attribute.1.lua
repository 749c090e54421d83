name: string
value: mixed (optional)
