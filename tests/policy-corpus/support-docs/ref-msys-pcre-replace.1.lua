subject: string
pattern: string
replacement: string
