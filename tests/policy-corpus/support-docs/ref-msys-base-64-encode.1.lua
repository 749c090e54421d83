original: mixed
fold: string, optional
charset: string, optional
