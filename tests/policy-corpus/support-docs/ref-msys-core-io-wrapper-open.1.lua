filename: string
options: numeric
mode: numeric
