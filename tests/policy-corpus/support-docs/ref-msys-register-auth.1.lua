schemename: string
authtable: table
