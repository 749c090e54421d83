hdr: string
value: string (optional)
mode: string (optional)
