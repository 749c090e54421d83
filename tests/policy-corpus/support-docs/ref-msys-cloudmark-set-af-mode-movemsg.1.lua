inbox: string
spam: string
unread_only: string
