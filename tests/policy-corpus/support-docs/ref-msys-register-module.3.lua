-- reroute all mail via example.com
function mod:core_config_get_message_routing_domain(scope, msg, buff)
  buff:set("example.com");
  return #buff;
end
