cachename: string
query: string
queryparams: table (optional)
options: table (optional)
