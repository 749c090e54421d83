require('msys.db')
require('msys.datasource')
