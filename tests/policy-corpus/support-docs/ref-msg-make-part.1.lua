mimetype: string
body: userdata, io_object, optional
encoding: string, optional
