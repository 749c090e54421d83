for child in node:children() do
  print(child:name());
end
