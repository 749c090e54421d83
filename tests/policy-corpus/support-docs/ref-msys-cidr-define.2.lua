local mod = {}
function mod:init()
  msys.cidr.define('mycidr', {
    type = 'rbldnsd',
    default_value = '127.0.0.1',
    source = '/path/to/file'
  });
  return true;
end
msys.registerModule("mymodule", mod);
