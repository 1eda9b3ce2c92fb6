module github.com/sealpost/sealpost/internal/benchmarks

go 1.26.0

require (
	github.com/sealpost/sealpost v0.0.0
	github.com/status-im/doubleratchet v3.0.0+incompatible
	go.mau.fi/libsignal v0.2.1
	golang.org/x/crypto v0.59.0
)

require (
	filippo.io/edwards25519 v1.1.0 // indirect
	github.com/cloudflare/circl v1.6.5 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/sys v0.50.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/sealpost/sealpost => ../../
