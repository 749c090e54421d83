dkim_sig: userdata, DKIM_SIGINFO type 
header_name: string
