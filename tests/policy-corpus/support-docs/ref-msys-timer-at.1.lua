time: number
closure: string
name: string, optional
