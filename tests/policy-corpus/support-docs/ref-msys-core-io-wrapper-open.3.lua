# Thread pool for Lua custom logs
threadpool "LUA_TXT_LOGS" { concurrency = 10 }
