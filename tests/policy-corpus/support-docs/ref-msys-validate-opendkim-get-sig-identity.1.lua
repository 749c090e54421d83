dkim: userdata, DKIM type
dkim_sig: userdata, DKIM_SIGINFO type
