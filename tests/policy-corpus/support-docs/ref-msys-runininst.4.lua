local domain = "domain.example"
local inst = msys.core.scheduler_for_domain(domain)
local st, res = msys.runInInst(inst,
  function()
    print("doing heavy lifting for:", domain)
    return true
  end
)
