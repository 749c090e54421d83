modname: string
table: table
