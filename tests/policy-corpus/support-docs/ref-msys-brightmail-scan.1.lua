msg: userdata, ec_message type
accept: userdata, accept_construct type
vctx: userdata, validate_context type
