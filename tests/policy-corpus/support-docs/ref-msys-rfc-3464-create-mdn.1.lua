msg: userdata, ec_message type
action: number
