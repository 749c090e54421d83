function(userdata, size)
  -- return a string of no more than "size" bytes, or nil when
  -- EOF is reached 
end
