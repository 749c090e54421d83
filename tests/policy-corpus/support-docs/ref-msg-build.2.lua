Content-Type: multipart/mixed; boundary="_bbb_"
Other-headers

--_bbb_
Content-Type: multipart/alternative; boundary="_ccc_"
Other-headers

--_ccc_
Content-Type: text/plain
Content-Disposition: inline
Other-headers

<the content of plain mail>
--_ccc_
Content-Type: text/html
Content-Disposition: inline
Content-Transfer-Encoding: quoted-printable
Other-headers

<the content of html mail>
--_ccc_
...
... other parts
...
--_ccc_--
--_bbb_
Content-type: attachment; name=cool-app.exe
other headers
Content-Transfer-Encoding: base64

<base64 encoded binary>
--_bbb_
...
... other attachments
...
--_bbb_--

.
