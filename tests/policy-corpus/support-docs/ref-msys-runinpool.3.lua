do_heavy_lifting = function()
  print("doing heavy lifting")
  return true
end
st, res = msys.runInPool('IO', do_heavy_lifting)
