number: number (optional)
str: string (optional)
