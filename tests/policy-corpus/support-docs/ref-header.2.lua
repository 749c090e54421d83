local header_list;
header_list =  msg:header("X-Custom-Header");
local hdrval = header_list[1];
