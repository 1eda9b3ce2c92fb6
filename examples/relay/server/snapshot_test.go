package server_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/sealpost/sealpost/examples/relay/server"
	"github.com/sealpost/sealpost/keys"
)

// relayStreams are the JetStream streams of a relay: its two streams,
// four key-value buckets and one object store (as readyz checks them).
var relayStreams = []string{server.MailboxStream, server.BundleStream, "KV_" + server.OwnerBucket,
	"KV_" + server.SeenBucket, "KV_" + server.DeviceListBucket, "KV_" + server.BlobRecordBucket,
	"OBJ_" + server.BlobPartBucket}

// snapshotStream takes an online snapshot of a stream through the
// JetStream API ($JS.API.STREAM.SNAPSHOT, what `nats stream backup`
// uses): the stream's config and state, the snapshot's bytes and the
// number of chunks it came in (1 KiB each, the smallest, so that the
// flow control is exercised).
func snapshotStream(t *testing.T, nc *nats.Conn, stream string) (natsserver.JSApiStreamRestoreRequest, []byte, int) {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	req, _ := json.Marshal(natsserver.JSApiStreamSnapshotRequest{DeliverSubject: inbox, NoConsumers: true, ChunkSize: 1024})
	m, err := nc.Request(fmt.Sprintf(natsserver.JSApiStreamSnapshotT, stream), req, 5*time.Second)
	if err != nil {
		t.Fatalf("snapshot %s: %v", stream, err)
	}
	var resp natsserver.JSApiStreamSnapshotResponse
	if err := json.Unmarshal(m.Data, &resp); err != nil || resp.Error != nil || resp.Config == nil || resp.State == nil {
		t.Fatalf("snapshot %s: %s (%v)", stream, m.Data, err)
	}
	var data []byte
	chunks := 0
	for {
		chunk, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("snapshot %s: %v", stream, err)
		}
		// The end: an empty message, with a status header 204 after a
		// whole chunk was sent, none for a snapshot under one chunk, and
		// 408 or 500 for a failure.
		if len(chunk.Data) == 0 {
			if st := chunk.Header.Get("Status"); st != "204" && st != "" {
				t.Fatalf("snapshot %s ended with status %q %q", stream, st, chunk.Header.Get("Description"))
			}
			break
		}
		data = append(data, chunk.Data...)
		chunks++
		if chunk.Reply != "" {
			if err := chunk.Respond(nil); err != nil { // flow control: one ack per chunk
				t.Fatal(err)
			}
		}
	}
	return natsserver.JSApiStreamRestoreRequest{Config: *resp.Config, State: *resp.State}, data, chunks
}

// restoreStream restores a snapshot into a NATS server that lacks the
// stream ($JS.API.STREAM.RESTORE, what `nats stream restore` uses).
func restoreStream(t *testing.T, nc *nats.Conn, meta natsserver.JSApiStreamRestoreRequest, data []byte) {
	t.Helper()
	req, _ := json.Marshal(meta)
	m, err := nc.Request(fmt.Sprintf(natsserver.JSApiStreamRestoreT, meta.Config.Name), req, 5*time.Second)
	if err != nil {
		t.Fatalf("restore %s: %v", meta.Config.Name, err)
	}
	var resp natsserver.JSApiStreamRestoreResponse
	if err := json.Unmarshal(m.Data, &resp); err != nil || resp.Error != nil || resp.DeliverSubject == "" {
		t.Fatalf("restore %s: %s (%v)", meta.Config.Name, m.Data, err)
	}
	const chunk = 64 << 10
	for len(data) > 0 {
		n := min(chunk, len(data))
		r, err := nc.Request(resp.DeliverSubject, data[:n], 5*time.Second)
		if err != nil || len(r.Data) != 0 {
			t.Fatalf("restore %s: chunk refused: %v %s", meta.Config.Name, err, r.Data)
		}
		data = data[n:]
	}
	r, err := nc.Request(resp.DeliverSubject, nil, 30*time.Second)
	if err != nil {
		t.Fatalf("restore %s: %v", meta.Config.Name, err)
	}
	var done natsserver.JSApiStreamCreateResponse
	if err := json.Unmarshal(r.Data, &done); err != nil || done.Error != nil {
		t.Fatalf("restore %s: %s (%v)", meta.Config.Name, r.Data, err)
	}
}

// TestOnlineSnapshot backs up a running relay's NATS without stopping
// anything, one JetStream snapshot per stream, restores them into another
// NATS server and starts a relay on it: the envelope, the mailbox's owner
// key, the device list and the bundle are all there.
func TestOnlineSnapshot(t *testing.T) {
	ctx := context.Background()
	ns, _ := natsFor(t)
	tr := startRelay(t, server.Config{NATSURL: ns.ClientURL(), Rate: -1})
	c := tr.client()
	mbx := []byte("snapshotted")
	owner := tr.own(mbx)
	// Random bytes, so that the snapshot (compressed) takes several chunks.
	env := fakeEnvelope(mbx, 5, 8000)
	rand.Read(env[len(env)-8000:])
	if err := c.Post(ctx, env); err != nil {
		t.Fatal(err)
	}
	list := deviceList(t, keys.GenerateAccountKey(), nil, 1)
	if err := c.PutDeviceList(ctx, "dave", list.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := c.PutBundle(ctx, uploadKey, "dave", 2, nil, []byte("dave's last resort")); err != nil {
		t.Fatal(err)
	}

	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	type snap struct {
		meta natsserver.JSApiStreamRestoreRequest
		data []byte
	}
	var snaps []snap
	most := 0
	for _, s := range relayStreams {
		meta, data, chunks := snapshotStream(t, nc, s)
		snaps = append(snaps, snap{meta, data})
		most = max(most, chunks)
	}
	if most < 2 {
		t.Errorf("every snapshot came in one chunk: the flow control was not exercised")
	}
	// The relay kept serving meanwhile.
	if code := getStatus(t, tr.url()+"/readyz"); code != 200 {
		t.Errorf("readyz during the backup: %d", code)
	}

	ns2, _ := natsFor(t)
	nc2, err := nats.Connect(ns2.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	for _, s := range snaps {
		restoreStream(t, nc2, s.meta, s.data)
	}
	restored := startRelay(t, server.Config{NATSURL: ns2.ClientURL(), Rate: -1})
	c = restored.client()
	wantStored(t, c, "dave", list)
	blob, oneTime, err := c.FetchBundle(ctx, "dave", 2)
	if err != nil || string(blob) != "dave's last resort" || oneTime {
		t.Fatalf("bundle after restore: %q (one-time %v) %v", blob, oneTime, err)
	}
	sub, err := c.Subscribe(ctx, mbx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	d, ok := next(t, sub, 10*time.Second)
	if !ok || string(d.Envelope) != string(env) {
		t.Fatalf("envelope after restore: %v", ok)
	}
}
