require("msys.core");

local function delay_domain(cc)
  -- Check the number of parameters
  if cc.argc < 2 then
    print("You must pass a parameter to this command");
    return;
  end
  local domain = cc.argv[1];
  local dr = msys.core.dns_get_domain(domain);
  if dr ~= nil then
    msys.core.mail_queue_delay_domain(dr, "451 4.4.1 [internal] manually delayed domain]");
    print(domain, "added to the delayed queue.");
  end
end

msys.registerControl("delay_domain", delay_domain);
