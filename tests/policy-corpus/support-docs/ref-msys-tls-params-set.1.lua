tls_params: mixed
param: string
val: string
