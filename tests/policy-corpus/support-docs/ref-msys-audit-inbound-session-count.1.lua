cidr: string
servicename: string
