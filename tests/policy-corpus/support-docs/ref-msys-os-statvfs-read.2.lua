require("msys.core");
  require("msys.os");

  local cache = {};

  local function subscribe(cc)
     -- Check the number of parameters
     if cc.argc < 2 then
       print ("You must pass a parameter to this command");
       return;
     end
     local path = cc.argv[1];

     if cache[path] == nil then
      cache[path] = msys.os.statvfs_subscribe(path, 5);
      if (cache[path] == nil) then
        print ("Memory exhausted.");
      else
        print ("Created subscription for " .. path);
      end
     end
  end

  local function read(cc)
     -- Check the number of parameters
     if cc.argc < 2 then
       print("You must pass a parameter to this command");
       return;
     end
     local path = cc.argv[1];
     local st = nil;

     if cache[path] == nil then
       print ("ERROR: No subscription found.");
     end

     st, e = msys.os.statvfs_read(cache[path]);
     if (st == nil) then
       print (e);
     else
       print ("Version          : " .. st["version"]);
       print ("Available kB     : " .. st["kilobytes_available"]);
       print ("Total kB         : " .. st["kilobytes_total"]);
       print ("Available objects: " .. st["objects_available"]);
       print ("Total objects    : " .. st["objects_total"]);
     end

     return st;
  end

  msys.registerControl("subscribe", subscribe)
  msys.registerControl("read", read)
