msg: userdata, ec_message type
options: table
ar: string, optional. It's the message's authentication assessment to be copied as-is into the AAR header.

