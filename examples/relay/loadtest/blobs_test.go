package loadtest

import (
	"context"
	"flag"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/examples/relay/client"
)

var blobSize = flag.Int64("blob.size", 0, "run TestBlobThroughput with a file of this many bytes (1073741824 for the report)")

// genReader yields n bytes of a cheap pattern, so no file is held in memory.
type genReader struct{ off, n int64 }

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), g.n-g.off))
	for i := range k {
		p[i] = byte((g.off + int64(i)) * 131 >> 7)
	}
	g.off += int64(k)
	return k, nil
}

// TestBlobThroughput (-blob.size=N) moves one file of N bytes, in one run:
// a raw NATS Object Store put and get on an embedded JetStream in this
// process (the floor: no HTTP, no parts), the same bytes as a blob through
// a relay process over loopback HTTP (client.BlobStore Put and Get: HTTP,
// parts, records), and the file through attach.Upload and attach.Download
// (encryption too). It does so for a relay with NATS embedded (JetStream's
// file-store cache then counts in the relay's RSS) and for one on this
// process's NATS server (the relay's own memory). It reports MB/s of each
// and each relay process's peak RSS (VmHWM).
func TestBlobThroughput(t *testing.T) {
	n := *blobSize
	if n <= 0 {
		t.Skip("run with -blob.size=1073741824")
	}
	ctx := context.Background()
	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }

	// Raw: embedded NATS, in-process connection, as the relay connects.
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats did not start")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	obs, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "RAW", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: "file"}, &genReader{n: n}); err != nil {
		t.Fatal(err)
	}
	rawPut := time.Since(start)
	start = time.Now()
	res, err := obs.Get(ctx, "file")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.Copy(io.Discard, res); err != nil || got != n {
		t.Fatalf("raw get: %d bytes, %v", got, err)
	}
	rawGet := time.Since(start)
	res.Close()
	obs.Delete(ctx, "file")

	t.Logf("%d bytes: raw NATS object store put %.0f MB/s, get %.0f MB/s", n, rate(rawPut), rate(rawGet))
	for _, nats := range []string{"", ns.ClientURL()} {
		relay := startRelay(t, 1000)
		if nats != "" {
			relay.stop()
			relay.natsURL = nats
			relay.start()
			relay.peakHWM.Store(0)
			relay.peakHeap.Store(0)
		}
		relayThroughput(t, relay, n, rawPut, rawGet)
		relay.stop()
	}
}

func relayThroughput(t *testing.T, relay *relayProc, n int64, rawPut, rawGet time.Duration) {
	ctx := context.Background()
	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }
	blobs := client.New(relay.url()).Blobs()
	start := time.Now()
	id, up, err := blobs.Create(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := blobs.Put(ctx, up, 0, &genReader{n: n}); err != nil {
		t.Fatal(err)
	}
	relayPut := time.Since(start)
	relay.sample()
	start = time.Now()
	rc, err := blobs.Get(ctx, id, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.Copy(io.Discard, rc); err != nil || got != n {
		t.Fatalf("relay get: %d bytes, %v", got, err)
	}
	rc.Close()
	relayGet := time.Since(start)
	relay.sample()

	start = time.Now()
	p, err := attach.Upload(ctx, blobs, &genReader{n: n}, attach.WithLength(n))
	if err != nil {
		t.Fatal(err)
	}
	attachUp := time.Since(start)
	relay.sample()
	start = time.Now()
	if err := attach.Download(ctx, blobs, p, io.Discard); err != nil {
		t.Fatal(err)
	}
	attachDown := time.Since(start)
	relay.sample()

	where := "embedded NATS"
	if relay.natsURL != "" {
		where = "external NATS"
	}
	t.Logf("relay, %s: blob PATCH %.0f MB/s (%.2fx raw put), GET %.0f MB/s (%.2fx raw get)", where,
		rate(relayPut), rawPut.Seconds()/relayPut.Seconds(), rate(relayGet), rawGet.Seconds()/relayGet.Seconds())
	t.Logf("relay, %s: attach.Upload %.0f MB/s (%.2fx raw put), attach.Download %.0f MB/s (%.2fx raw get)", where,
		rate(attachUp), rawPut.Seconds()/attachUp.Seconds(), rate(attachDown), rawGet.Seconds()/attachDown.Seconds())
	t.Logf("relay, %s: peak RSS (VmHWM) %s, peak Go heap in use %s", where, mib(relay.peakHWM.Load()), mib(relay.peakHeap.Load()))
}
