monitor: string
options: table, optional
