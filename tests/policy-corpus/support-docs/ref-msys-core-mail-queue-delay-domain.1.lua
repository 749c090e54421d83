dr: userdata, domain_record
note: string
