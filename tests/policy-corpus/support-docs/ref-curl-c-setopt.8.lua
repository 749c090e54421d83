function(userparam, offset, origin)
  -- Return 0 on success, 1 on failure or 2 to indicate that seeking
  -- is incompatible and that cURL should workaround it by reading
  -- and discarding the data
end
