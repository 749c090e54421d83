st, e = msys.os.statvfs_read(cache[path]);
  if (st == nil) then
    print (e);
  else
    print (st["kilobytes_total"]);
  end
