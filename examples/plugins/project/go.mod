module github.com/iqengine/iqengine/examples/plugins/project

go 1.24.0

require github.com/iqengine/iqengine/sdk/go v0.0.0

// The SDK from this repository; a plugin of your own requires a released
// version and needs no replace.
replace github.com/iqengine/iqengine/sdk/go => ../../../sdk/go
