package plugins

// NewUninterruptibleHost is NewHost without wazero's per-call close
// watcher, so a test can see what the host's own call path allocates.
func NewUninterruptibleHost(o Options) (*Host, error) {
	h, err := NewHost(o)
	if err == nil {
		h.uninterruptible = true
	}
	return h, err
}
