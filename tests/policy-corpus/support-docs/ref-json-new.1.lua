o = json.new();
o.name = "value";
print(o); -- { "name": "value" }
