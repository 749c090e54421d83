strxml: string
keep_blanks: numeric (optional)
