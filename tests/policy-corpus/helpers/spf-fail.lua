-- bindery's corpus helper, not Momentum's: what Momentum's SPF module leaves for
-- kitchen-sink/check_spf.lua, a failed check, in the message context at MAIL FROM.
local mod = {}
function mod:validate_mailfrom(str, accept, vctx)
  vctx:set(msys.core.ECMESS_CTX_MESS, "spf_status", "fail")
  return msys.core.VALIDATE_CONT
end
msys.registerModule("helper_spf_fail", mod)
