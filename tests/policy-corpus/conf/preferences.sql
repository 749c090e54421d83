-- The multi-channel demo's preferences database, as its scripts query it: a suppression
-- list, quiet times and alternate addresses by user.
CREATE TABLE BLACKLIST (ADDRESS text primary key, BULK integer);
INSERT INTO BLACKLIST VALUES ('blocked@example.com', 1);
CREATE TABLE USER_PREF (ID text, QUIET_START integer, QUIET_END integer, NOTE text);
INSERT INTO USER_PREF VALUES ('quiet-user', 0, 86400, 'always quiet');
CREATE TABLE USER_ALT_ADDRESS (USERID text, ADDRESS text, START integer, END integer, NOTE text);
INSERT INTO USER_ALT_ADDRESS VALUES ('alt-user', 'alternate@example.com', 0, 86400, 'all day');
