cidr: string (optional)
service_type: string (optional)
