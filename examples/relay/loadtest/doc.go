// Package loadtest holds the relay's load and fault test, TestRelayLoad:
// sealpost Devices in pairs exchanging messages and receipts through one
// relay (a child process running the relay with embedded NATS JetStream)
// over loopback, in three scenarios: steady load, the relay killed with
// SIGKILL and restarted twice, and a hostile client next to the honest
// ones. It checks that nothing the relay accepted is lost and nothing
// reaches the app twice, and reports throughput, latency and memory.
//
// The package has no code outside its tests. Run it from the examples
// folder:
//
//	go test -run TestRelayLoad -v ./relay/loadtest
//	go test -run TestRelayLoad -v ./relay/loadtest -load.duration 60s -load.devices 200
//
// See load_test.go for the flags and what each scenario checks.
package loadtest
