...
for node in doc:xpath("//item") do
  print(node:name())
end
