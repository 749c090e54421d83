counter_path: string
semantics: number, optional
