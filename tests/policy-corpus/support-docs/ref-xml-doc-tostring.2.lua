<?xml version="1.0" encoding="utf8"?>
<doc>
  <item>I am a child node.</item>
</doc>
