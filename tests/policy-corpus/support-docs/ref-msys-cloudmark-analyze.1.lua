hdr: string
msg: userdata, ec_message type (optional)
vctx: userdata, validate_context type (optional)
