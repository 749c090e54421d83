local json_string = [[{"foo": "bar"}]];
local obj = json.decode(json_string);
obj.int = 4;
local array = json.encode({ 0, 1, 3 });
obj.arr = array;
print(tostring(obj));
