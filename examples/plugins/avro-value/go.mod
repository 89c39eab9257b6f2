module github.com/iqengine/iqengine/examples/plugins/avro-value

go 1.24.0

require (
	github.com/iqengine/iqengine/sdk/go v0.0.0
	github.com/linkedin/goavro/v2 v2.15.0
)

require (
	github.com/golang/snappy v1.0.0 // indirect
	github.com/stretchr/testify v1.9.0 // indirect
)

// The SDK from this repository; a plugin of your own requires a released
// version and needs no replace.
replace github.com/iqengine/iqengine/sdk/go => ../../../sdk/go
