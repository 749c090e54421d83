number: flags
localpart_str: userdata, ec_string type
domain_str: userdata, ec_string type
