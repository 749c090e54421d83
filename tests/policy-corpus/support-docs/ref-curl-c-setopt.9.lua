c:setopt(curl.OPT_HTTPHEADER, "X-Foo: Bar",
    "Content-Type: application/json");
c:setopt(curl.OPT_HTTPHEADER, nil);
