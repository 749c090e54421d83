-- bindery's corpus helper, not Momentum's: the recipient metadata a REST transmission
-- carries (mo_rcpt_meta), which multi-channel-demo/user_time_preference.lua reads.
local mod = {}
function mod:validate_data(msg, accept, vctx)
  msg:context_set(msys.core.ECMESS_CTX_MESS, "mo_rcpt_meta", '{"userId": "alt-user", "timeOverride": 3600}')
  return msys.core.VALIDATE_CONT
end
msys.registerModule("helper_user_meta", mod)
