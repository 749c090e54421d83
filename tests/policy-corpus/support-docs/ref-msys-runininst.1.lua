pool: mixed
closure: mixed
