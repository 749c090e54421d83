code: string
message: string
