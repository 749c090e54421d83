status, res = msys.runInPool("IO",
  function()
    -- do some IO intensive work here, such as interrogate the message contents
    return "done"; -- passed back to the 'res' variable
  end,
  function()
    -- Completion function
    print("Done!");
  end,
  msys.core.ECTP_COMPLETE_CALLBACK_SCHED -- Complete in the scheduler
);
