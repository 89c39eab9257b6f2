module github.com/iqengine/iqengine/sdk/go

// 1.24 is the first Go with //go:wasmexport and -buildmode=c-shared for
// GOOS=wasip1, which every plugin needs.
go 1.24.0
