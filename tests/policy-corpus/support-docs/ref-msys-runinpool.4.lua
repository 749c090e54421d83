st, res = msys.runInPool('IO',
  function()
    print("doing heavy lifting")
    return true
  end
)
