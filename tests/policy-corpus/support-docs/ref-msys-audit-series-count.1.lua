name: string
options: table, optional
