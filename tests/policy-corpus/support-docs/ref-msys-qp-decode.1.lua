encoded_txt: string
charset: string, optional
