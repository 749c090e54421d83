<doc>
 <item>I am a child node.</item>
</doc>
