method: string
endpoint: string
function_name: string
