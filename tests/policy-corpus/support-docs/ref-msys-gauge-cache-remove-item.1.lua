cachename: string
keystring: string
