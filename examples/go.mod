module github.com/sealpost/sealpost/examples

go 1.26.0

require (
	github.com/sealpost/sealpost v0.0.0
	go.etcd.io/bbolt v1.5.0
)

require (
	github.com/cloudflare/circl v1.6.5 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/sealpost/sealpost => ../
