function(userparam, command)
  -- command is a numeric code
  -- return a numeric code dependent upon the result of the ioctl
  -- operation.  Consult the cURL documentation for more
  -- information.
end
