name: string
options: table
