response_text: string
domain: string
