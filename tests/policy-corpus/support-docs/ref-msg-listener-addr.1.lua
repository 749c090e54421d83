require("msys.extended.message");

local mod = {};

function mod:validate_data(msg, ac, vctx)
  print(msg:listener_addr('ip'));
    -- "10.1.2.3"
  print(msg:listener_addr('port'));
      -- "25"
  print(msg:listener_addr('all'));
      -- "10.1.2.3:25"
  print(msg:listener_addr()); -- defaults to 'all'
      -- "10.1.2.3:25"
  return msys.core.VALIDATE_CONT;
end

msys.registerModule("myMod", mod);
