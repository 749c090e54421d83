-- Assigns every message to a binding, the way the Momentum binding documentation says:
-- start from the most general binding, let if blocks pick more specific ones, and let the
-- else clause keep the general one.

require("msys.core")
require("msys.extended.message")

local mod = {}

-- Sender domains whose mail is bulk.
local bulk_senders = { ["list.example.com"] = true, ["news.example.com"] = true }

local function domain_of(address)
  return string.lower(string.match(address or "", "@([^@]+)$") or "")
end

function mod:validate_set_binding(msg)
  local binding = "general"

  local named = msg:header("X-Binding")
  if #named > 0 and msys.core.config_get_binding_id_from_name(named[1]) >= 0 then
    -- An application that knows best names the binding itself.
    binding = named[1]
  elseif bulk_senders[domain_of(msg:mailfrom())] then
    -- Bulk mail goes to a group; msg:binding_group picks one of its bindings.
    msg:binding_group("marketing")
    return msys.core.VALIDATE_DONE
  elseif domain_of(msg:rcptto()) == "partner.example.net" then
    binding = "partner"
  elseif #msg:header("X-Transactional") > 0 then
    binding = "transactional"
  end

  msg:binding(binding)
  return msys.core.VALIDATE_CONT
end

msys.registerModule("assign", mod)
