sender: string
rcptto: string
text: string
subject: string, optional
charset: string, optional
