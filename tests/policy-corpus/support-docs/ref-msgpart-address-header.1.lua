headername: string
component: string, optional
