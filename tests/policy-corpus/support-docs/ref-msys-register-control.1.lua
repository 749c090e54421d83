prefix: string
closure: string
