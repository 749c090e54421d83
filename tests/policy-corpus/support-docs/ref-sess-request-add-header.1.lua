header: string
value: string
replace: boolean
