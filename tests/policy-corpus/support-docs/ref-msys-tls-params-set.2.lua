local core = require("msys.core");
require("msys.tls_params");
local mod = {};

function mod:core_get_outbound_tls_parameters(msg, params)

  -- 0 = no, 1 = ifavailable, 2 = required
  params.use_tls = 2;

  -- The tls_params module is used here for setting all string values from the `ec_ssl_ctx_params` struct
  msys.tls_params.set(params, "certfile", "path/to/cert");
  msys.tls_params.set(params, "keyfile", "psth/to/key");
  
  -- Other valid params that can be set include:
  -- cipherlist
  -- ca
  
end

msys.registerModule("custom_tls_hook", mod);
