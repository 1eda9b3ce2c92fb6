// Package loadtest holds the relay's load and fault test, TestRelayLoad:
// sealpost Devices in pairs exchanging messages and receipts through one
// relay (a child process running the relay with embedded NATS JetStream)
// over loopback, in three scenarios: steady load, the relay killed with
// SIGKILL and restarted twice, and a hostile client next to the honest
// ones. It checks that nothing the relay accepted is lost and nothing
// reaches an app twice, and reports throughput, latency, CPU and memory.
//
// The package has no code outside its tests. From the examples folder, the
// default run (100 devices, 1 message/s each, 4 s of load per scenario;
// what ./test.sh runs under -race) and the full run:
//
//	go test -run TestRelayLoad -v ./relay/loadtest
//	go test -timeout 30m -run TestRelayLoad -v ./relay/loadtest -load.devices 200 -load.duration 60s -load.rate 2
//
// See TestRelayLoad for the flags and what each scenario checks.
//
// TestReconnectRate (skipped unless -reconnect.duration is set) holds
// 1,100 mailbox connections open at once, then opens and closes them in a
// loop and reports the connections per second served without a 503:
//
//	go test -run TestReconnectRate -v ./relay/loadtest -reconnect.duration 20s
package loadtest
