require("msys.core");
require 'msys.timer';

rep = msys.timer.every(2, function ()
  print("rep: I am the 2 second repeating timer")
end, "repeater")
