addressstring: string
component: string
