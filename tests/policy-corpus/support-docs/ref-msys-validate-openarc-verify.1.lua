require("msys.core");
require("msys.extended.message");
require("msys.validate.openarc");
local mod = {};

function mod:validate_data_spool_each_rcpt(msg, ac, vctx)
  msys.validate.openarc.verify(msg)
  local cv = msg:context_get(msys.core.ECMESS_CTX_MESS, "arc_cv")
  if cv then
    print("ARC validation result: ", cv)
  else
	print("Failed to do ARC validation. Check paniclog for reasons.")
  end
end

msys.registerModule("openarc_verify", mod);
