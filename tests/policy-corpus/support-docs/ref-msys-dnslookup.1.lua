name: string
recordtype: string (optional)
options: table (optional)
