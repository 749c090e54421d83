action: string
parameters: string
