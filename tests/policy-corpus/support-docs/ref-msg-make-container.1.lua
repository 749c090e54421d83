mimetype: string
boundary: string, optional
add_terminator: boolean, optional
