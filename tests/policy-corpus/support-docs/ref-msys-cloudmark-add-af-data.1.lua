addr: string
data: userdata (key-value pairs)
