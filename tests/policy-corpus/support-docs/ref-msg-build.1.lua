headers: table
parts: table
attachments: array of userdata
