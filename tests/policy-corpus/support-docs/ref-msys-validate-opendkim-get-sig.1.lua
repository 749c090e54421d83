dkim: userdata, DKIM type
num: numeric, optional
