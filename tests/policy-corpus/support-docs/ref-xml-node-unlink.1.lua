local doc = xml.parsexml([[<doc><item/></doc>]]);
local node = doc:root();
local node = node:unlink();
