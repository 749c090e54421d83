type: string
url: string
data: string (optional)
