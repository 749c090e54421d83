function(userparam, dltotal, dlnow, uptotal, upnow)
  -- return 0 (or omit a return statement) to allow the operation
  -- to continue. Returning any other integer value will cause
  -- the operation to abort
end
