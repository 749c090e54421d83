codenum: string
message: string
