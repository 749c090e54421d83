interval: number
closure: string
name: string, optional
