local inst = msys.core.scheduler_for_domain("domain.example")
local status, result = msys.runInInst(inst, closure)
