mailfrom: string
rcptto: string
