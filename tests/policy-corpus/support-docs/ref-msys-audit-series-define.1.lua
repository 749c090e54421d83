name: string
type: string
interval: number
num_windows: number
options: table, optional
