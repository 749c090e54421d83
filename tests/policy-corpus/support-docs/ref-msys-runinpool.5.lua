...
-- we want to validate that we ran on a different OS thread, so
-- set a marker we can use in our output
_OSTLS.async_t_marker = 42;

function mod:validate_data(msg, ac, vctx)
 msys.runInPool('CPU', function ()
 print("CPU", "in cpu", _OSTLS.async_t_marker);
 end, true);
 test('validate_data');
 return msys.core.VALIDATE_CONT;
end

function mod:validate_data_spool(msg, ac, vctx)
  msys.runInPool('CPU',
    function ()
      print("CB", "cb data spool", _OSTLS.async_t_marker);
    end,
    function ()
      print("CB", "cb completing", _OSTLS.async_t_marker);
    end
  )
...
end
