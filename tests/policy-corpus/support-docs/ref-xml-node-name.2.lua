item
text
