msg: userdata, ec_message type
vctx: userdata, validate_context type
