object: mixed
classnamestring: string
