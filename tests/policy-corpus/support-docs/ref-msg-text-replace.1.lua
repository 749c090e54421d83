pattern: string
replacement: string
