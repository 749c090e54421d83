function(userdata, datastring)
  -- datastring is the incoming data to store
  -- return an integer indicating how many bytes were stored
end
