package attach

// Test hooks: fixed header nonces for the golden vectors, and the layout.

// SetNonceForTest makes every new header use nonce until the returned
// function restores random nonces. Not safe for parallel tests.
func SetNonceForTest(nonce []byte) (restore func()) {
	saved := randomNonce
	randomNonce = func(b []byte) { copy(b, nonce) }
	return func() { randomNonce = saved }
}

// ChunkCount returns the number of data chunks of a file of n bytes.
func ChunkCount(n int64) int64 { return layoutOf(PaddedLength(n)).chunks }

// ChunkCTSize, TrailerCTSize and TagSize are the ciphertext sizes.
const (
	ChunkCTSize   = chunkCTSize
	TrailerCTSize = trailerCTSize
	TagSize       = tagSize
)
