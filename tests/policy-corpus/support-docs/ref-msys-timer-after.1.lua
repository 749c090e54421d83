delta: number
closure: string
name: string, optional
