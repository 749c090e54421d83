c = curl.new();
c:setopt(curl.OPT_URL, "http://example.com/path");
c:perform();
