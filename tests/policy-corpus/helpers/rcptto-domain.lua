-- bindery's corpus helper, not Momentum's: route_to_smart_host.lua reads the recipient's
-- domain from the message context ("rcptto_domain"), which its own setup filled.
local mod = {}
function mod:validate_data_spool_each_rcpt(msg, accept, vctx)
  local d = string.match(msg:rcptto(), "@(.+)$")
  msg:context_set(msys.core.ECMESS_CTX_MESS, "rcptto_domain", d)
  return msys.core.VALIDATE_CONT
end
msys.registerModule("helper_rcptto_domain", mod)
