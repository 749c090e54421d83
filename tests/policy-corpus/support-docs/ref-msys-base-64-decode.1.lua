encoded_text: string
charset: string, optional
