pool: mixed
closure: mixed
...: mixed, optional
