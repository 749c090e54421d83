local doc = node:doc();
print(doc:tostring());
