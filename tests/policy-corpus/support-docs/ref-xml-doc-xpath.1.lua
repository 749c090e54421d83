query: string
contextnode: string (optional)
