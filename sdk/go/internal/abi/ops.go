package abi

// The operations of the capability packages linked into the program, as
// each package's init function registers them (nil when not linked, like a
// missing export). Package iqtest runs vectors through them natively; the
// wasm exports call the same functions.
var (
	Init            func(config []byte) error
	KeyToJSON       func(key []byte) ([]byte, error)
	ValueToJSON     func(value []byte) ([]byte, error)
	KeyFromText     func(text []byte) ([]byte, error)
	Partition       func(key []byte, partitions int32) (int32, error)
	TransformBegin  func(params []byte) error
	TransformRecord func(frame []byte) (out []byte, keep bool, err error)
	TransformEnd    func()
)
