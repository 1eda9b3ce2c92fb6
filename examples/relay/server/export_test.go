package server

// SkipMailboxAuth turns the mailbox signature check off, for the benchmark
// that measures what the check costs. It exists in test binaries only.
func (r *Relay) SkipMailboxAuth() { r.noAuth = true }
