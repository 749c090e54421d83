path: string
interval: number
