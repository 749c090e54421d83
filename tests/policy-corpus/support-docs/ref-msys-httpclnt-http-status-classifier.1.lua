require('msys.httpclnt');
require('msys.delivery');
