subject: string
pattern: string
