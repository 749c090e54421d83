object_or_path: mixed
delta: number
