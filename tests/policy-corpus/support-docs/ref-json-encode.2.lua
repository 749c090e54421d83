{
  "arr": [
    0,
    1,
    3
  ],
  "foo": "bar",
  "int": 4
}
