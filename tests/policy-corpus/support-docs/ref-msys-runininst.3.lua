local domain = "domain.example"
local do_heavy_lifting = function()
  print("doing heavy lifting for:", domain)
  return true
end

local inst = msys.core.scheduler_for_domain(domain)
local st, res = msys.runInInst(inst, do_heavy_lifting)
