-- The per-message login of Momentum's outbound_smtp_auth page, chosen by the key.
local mod = {}
function mod:outbound_smtp_auth_config(msg)
  local ctx = msys.core.VCTX_MESS
  if msg:context_get(ctx, "outbound_smtp_auth_key") == "somestring" then
    msg:context_set(ctx, "outbound_smtp_auth_user", "msys")
    msg:context_set(ctx, "outbound_smtp_auth_pass", "msys")
  end
end
msys.registerModule("tenants", mod)
