c = curl.new();
c:setopt(curl.OPT_URL, "http://example.com/index.php");
c:setopt(curl.OPT_WRITEFUNCTION, function(userdata, datastring) print(datastring); »
  return string.len(datastring); end);
c:perform();
