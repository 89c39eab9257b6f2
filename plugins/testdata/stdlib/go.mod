module github.com/iqengine/iqengine/plugins/testdata/stdlib

go 1.24.0

require github.com/iqengine/iqengine/sdk/go v0.0.0

replace github.com/iqengine/iqengine/sdk/go => ../../../sdk/go
