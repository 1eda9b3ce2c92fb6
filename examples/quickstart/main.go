// Command quickstart runs Alice, Bob and a relay in one process through a
// sealpost conversation: a post-quantum session start from a published
// bundle, messages both ways, two delivered out of order (a gap that
// closes), one dropped by the relay (a gap and a drop that stay open),
// delivery receipts that ride along or leave delayed and batched, a read
// receipt, and safety numbers; then Alice sends Bob a file through the
// relay's blob store (envelope/attach). Beside what each device saw, it
// prints what the relay saw: mailbox, size and tag, never a sender, content
// or kind; of the file, an opaque blob of a padded size, never its name,
// type or key. Last, Alice links a second device (her laptop) to her
// account, approving its link code on her phone, and Bob sends one message
// to Alice's account (SendUser): one envelope per device, and both of her
// devices print it. Of the account, the relay stores only the signed device
// list, a blob it does not read past the account key and version.
//
// Numbers such as #3 are the sender's sequence numbers in the conversation's
// transcript (every envelope a device sends, message or receipt, takes the
// next one); transcript findings name them.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/transcript"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// relay stores bundle blobs and routes envelopes by mailbox, reading
// nothing but the routing header (envelope.Parse). It knows whose mailbox
// is whose only because each app registered its own.
type relay struct {
	out     io.Writer
	owners  map[string]string // mailbox id -> owner, for printing
	bundles map[string][][]byte
	queues  map[string][][]byte
	sizes   []int             // every envelope's size, in order
	lists   map[string][]byte // user -> the newest device list, as uploaded
	blobs   blobStore
}

// blobStore is the relay's blob store, an attach.BlobStore in memory: it
// keeps each blob under a random id with its size and nothing else. A real
// relay (examples/relay) also gives separate capabilities to upload and to
// download; here the id is both.
type blobStore struct {
	size  map[string]int64
	blobs map[string][]byte
}

func (b *blobStore) Create(_ context.Context, size int64) (id, upload string, err error) {
	var r [16]byte
	rand.Read(r[:])
	id = hex.EncodeToString(r[:])
	b.size[id] = size
	return id, id, nil
}

func (b *blobStore) Put(_ context.Context, upload string, off int64, r io.Reader) error {
	size, ok := b.size[upload]
	if !ok || off != int64(len(b.blobs[upload])) {
		return fmt.Errorf("blob store: no upload %s at %d", upload, off)
	}
	data, err := io.ReadAll(io.LimitReader(r, size-off+1))
	if err != nil {
		return err
	}
	if off+int64(len(data)) > size {
		return fmt.Errorf("blob store: more than the %d bytes reserved", size)
	}
	b.blobs[upload] = append(b.blobs[upload], data...)
	return nil
}

func (b *blobStore) Offset(_ context.Context, upload string) (int64, error) {
	return int64(len(b.blobs[upload])), nil
}

func (b *blobStore) Get(_ context.Context, id string, off, n int64) (io.ReadCloser, error) {
	blob := b.blobs[id]
	if int64(len(blob)) != b.size[id] || off < 0 || n < 0 || off+n > int64(len(blob)) {
		return nil, fmt.Errorf("blob store: no range %d+%d of %s", off, n, id)
	}
	return io.NopCloser(bytes.NewReader(blob[off : off+n])), nil
}

func (r *relay) register(owner string, mailbox []byte) { r.owners[string(mailbox)] = owner }

func (r *relay) publish(user string, blobs [][]byte) { r.bundles[user] = blobs }

// fetch hands out each one-time blob once, then the last-resort one.
func (r *relay) fetch(user string) []byte {
	list := r.bundles[user]
	if len(list) > 1 {
		r.bundles[user] = list[1:]
	}
	return list[0]
}

func (r *relay) post(o *sealpost.Outgoing) error {
	h, err := envelope.Parse(o.Envelope)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "      relay: %5d bytes for %s's mailbox %x…, tag %x…\n",
		len(o.Envelope), r.owners[string(h.Mailbox)], h.Mailbox[:4], h.Tag[:6])
	r.queues[string(h.Mailbox)] = append(r.queues[string(h.Mailbox)], o.Envelope)
	r.sizes = append(r.sizes, len(o.Envelope))
	return nil
}

// take removes and returns the mailbox's queue.
func (r *relay) take(mailbox []byte) [][]byte {
	q := r.queues[string(mailbox)]
	delete(r.queues, string(mailbox))
	return q
}

// convo is what the demo knows from outside the devices, to print names
// instead of ids: the text of every message sent.
type convo struct {
	texts    map[sealpost.MessageID]string
	messages int          // envelopes that carried a message
	receipts int          // envelopes that carried receipts only
	first    map[int]bool // sizes of the first-contact envelopes
}

// names lists the messages with these ids by their text.
func (c *convo) names(ids []sealpost.MessageID) string {
	var s []string
	for _, id := range ids {
		s = append(s, fmt.Sprintf("%q", c.texts[id]))
	}
	return strings.Join(s, ", ")
}

type user struct {
	name string
	dev  *sealpost.Device
	peer sealpost.Address
	out  io.Writer
	c    *convo
	seq  int                // the transcript sequence number of the last envelope sent
	last *sealpost.Incoming // the last message received
	// heard: something arrived from the peer, so the session is confirmed
	// and what this user sends is no longer a first contact.
	heard bool
}

// receiveAll takes the user's envelopes from the relay (in the given order,
// or as queued), prints what arrived and what it says, and tells the device
// each result is handled.
func (u *user) receiveAll(ctx context.Context, r *relay, order ...int) error {
	q := r.take(u.dev.Mailbox())
	if order == nil {
		for i := range q {
			order = append(order, i)
		}
	}
	for _, i := range order {
		open := u.dev.Findings(u.peer)
		in, err := u.dev.Receive(ctx, q[i])
		if err != nil {
			return fmt.Errorf("%s: %w", u.name, err)
		}
		u.heard = true
		u.print(in)
		u.closed(open)
		if err := u.dev.Done(ctx, in.ID); err != nil {
			return err
		}
	}
	return nil
}

// print shows one received result: the message or receipt, the receipts
// that rode along, and new transcript findings.
func (u *user) print(in *sealpost.Incoming) {
	switch in.Kind {
	case sealpost.KindMessage:
		fmt.Fprintf(u.out, "%-5s got %q from %s\n", u.name, in.Body, in.From)
		for _, p := range in.Attachments {
			fmt.Fprintf(u.out, "%-5s   … carrying the file %q (%s, %d bytes)\n", u.name, p.Name, p.MediaType, p.Length)
		}
		u.last = in
		if len(in.Delivered) > 0 {
			fmt.Fprintf(u.out, "%-5s   … with a delivery receipt riding along for %s\n", u.name, u.c.names(in.Delivered))
		}
		if len(in.Read) > 0 {
			fmt.Fprintf(u.out, "%-5s   … with a read receipt riding along for %s\n", u.name, u.c.names(in.Read))
		}
	default:
		ids := in.Delivered
		if in.Kind == sealpost.KindRead {
			ids = in.Read
		}
		fmt.Fprintf(u.out, "%-5s got a %s receipt from %s for %s\n", u.name, in.Kind, in.From, u.c.names(ids))
		if in.Kind == sealpost.KindRead && len(in.Delivered) > 0 {
			fmt.Fprintf(u.out, "%-5s   … and a delivery receipt for %s\n", u.name, u.c.names(in.Delivered))
		}
	}
	for _, f := range in.Findings {
		fmt.Fprintf(u.out, "%-5s   transcript finding: %v%s\n", u.name, f, u.explain(f, false))
	}
}

// explain says in words what a finding means here; final: at the end of
// the conversation, when an open gap is a message that never came.
func (u *user) explain(f transcript.Finding, final bool) string {
	switch f.Kind {
	case transcript.Gap:
		if final {
			return fmt.Sprintf(" (%s's #%d never arrived: lost, not late)", u.peer.User, f.Seq)
		}
		return fmt.Sprintf(" (%s's #%d has not arrived: late or lost; the gap closes if it turns up)", u.peer.User, f.Seq)
	case transcript.Drop:
		ids := make([]sealpost.MessageID, len(f.IDs))
		for i, id := range f.IDs {
			ids[i] = id
		}
		return fmt.Sprintf(" (%s: %s has later ones but not this; the relay dropped or holds it)", u.c.names(ids), u.peer.User)
	}
	return ""
}

// closed prints the findings that were open before a receive and are no
// longer: a gap the late message filled, a drop the peer no longer reports.
func (u *user) closed(before []transcript.Finding) {
	now := u.dev.Findings(u.peer)
	for _, f := range before {
		if slices.ContainsFunc(now, func(g transcript.Finding) bool { return g.String() == f.String() }) {
			continue
		}
		why := ""
		switch f.Kind {
		case transcript.Gap:
			why = fmt.Sprintf(" (%s's #%d arrived late: a reorder, not a loss)", u.peer.User, f.Seq)
		case transcript.Drop:
			why = fmt.Sprintf(" (%s now has it)", u.peer.User)
		}
		fmt.Fprintf(u.out, "%-5s   closed: %v%s\n", u.name, f, why)
	}
}

func (u *user) send(ctx context.Context, r *relay, body string, files ...*attach.Pointer) error {
	u.seq++
	if len(files) > 0 {
		fmt.Fprintf(u.out, "%-5s sends #%d %q with the file's pointer (blob id, file key, length, digest, type, name)\n",
			u.name, u.seq, body)
	} else {
		fmt.Fprintf(u.out, "%-5s sends #%d %q\n", u.name, u.seq, body)
	}
	o, err := u.dev.Send(ctx, u.peer, []byte(body), files...)
	if err != nil {
		return err
	}
	u.c.texts[o.ID] = body
	u.c.messages++
	if !u.heard {
		u.c.first[len(o.Envelope)] = true
	}
	if err := r.post(o); err != nil {
		return err
	}
	// The relay took it: the device may forget its copy. Until then the
	// envelope waits in the device's outbox (Unsent), even across a crash.
	return u.dev.Sent(ctx, o)
}

// flush sends the receipts whose random delay has passed.
func (u *user) flush(ctx context.Context, r *relay) error {
	receipts, err := u.dev.Flush(ctx)
	if err != nil {
		return err
	}
	for _, o := range receipts {
		u.seq++
		fmt.Fprintf(u.out, "%-5s sends #%d, a receipt envelope (Flush)\n", u.name, u.seq)
		u.c.receipts++
		if err := r.post(o); err != nil {
			return err
		}
	}
	return u.dev.Sent(ctx, receipts...)
}

func run(out io.Writer) error {
	_, err := conversation(out)
	return err
}

// conversation runs the whole demo and returns the relay, for the test to
// look at what it stored.
func conversation(out io.Writer) (*relay, error) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	r := &relay{out: out, owners: map[string]string{}, bundles: map[string][][]byte{}, queues: map[string][][]byte{},
		lists: map[string][]byte{},
		blobs: blobStore{size: map[string]int64{}, blobs: map[string][]byte{}}}
	c := &convo{texts: map[sealpost.MessageID]string{}, first: map[int]bool{}}
	aliceAddr, bobAddr := sealpost.Address{User: "alice", Device: 1}, sealpost.Address{User: "bob", Device: 1}
	aliceDev, err := sealpost.Open(ctx, sealpost.NewMemoryStore(), aliceAddr, sealpost.WithClock(clock))
	if err != nil {
		return nil, err
	}
	bobDev, err := sealpost.Open(ctx, sealpost.NewMemoryStore(), bobAddr, sealpost.WithClock(clock))
	if err != nil {
		return nil, err
	}
	alice := &user{name: "alice", dev: aliceDev, peer: bobAddr, out: out, c: c}
	bob := &user{name: "bob", dev: bobDev, peer: aliceAddr, out: out, c: c}
	r.register("alice", alice.dev.Mailbox())
	r.register("bob", bob.dev.Mailbox())
	fmt.Fprintln(out, "Addresses are user.device: alice.1 is Alice's device 1, bob.1 is Bob's.")
	fmt.Fprintf(out, "Mailbox ids (random; what the relay routes on): alice %x…, bob %x…\n\n",
		alice.dev.Mailbox()[:4], bob.dev.Mailbox()[:4])

	// Bob publishes a bundle, split into one blob per one-time prekey.
	bundle, err := bob.dev.NewBundle(ctx, 2)
	if err != nil {
		return nil, err
	}
	var blobs [][]byte
	for _, b := range bundle.Split() {
		blob, err := b.MarshalBinary()
		if err != nil {
			return nil, err
		}
		blobs = append(blobs, blob)
	}
	r.publish("bob", blobs)
	fmt.Fprintf(out, "bob   published %d bundle blobs: one per one-time prekey (%d) and a last-resort one;\n",
		len(blobs), len(bundle.OneTimePrekeys))
	fmt.Fprintln(out, "      the relay stores them unread and hands each one-time blob to one initiator")

	// Alice starts a session (X25519 + ML-KEM-1024) and writes.
	parsed, err := keys.ParseBundle(r.fetch("bob"), keys.WithClock(clock)) // the example's fixed clock; an app uses time.Now
	if err != nil {
		return nil, err
	}
	if err := alice.dev.StartSession(ctx, bobAddr, parsed); err != nil {
		return nil, err
	}
	fmt.Fprintln(out, "alice started a post-quantum session (X25519 + ML-KEM-1024) from one blob")
	for _, s := range []string{"Hi Bob!", "Lunch at noon?"} {
		if err := alice.send(ctx, r, s); err != nil {
			return nil, err
		}
	}
	fmt.Fprintln(out, "      (first contacts: until Bob replies, every envelope of Alice's also carries")
	fmt.Fprintln(out, "      the session start, sealed to Bob's mailbox key with HPKE X-Wing: hence the size)")
	if err := bob.receiveAll(ctx, r); err != nil {
		return nil, err
	}
	if err := bob.send(ctx, r, "Yes, see you there."); err != nil {
		return nil, err
	}
	fmt.Fprintln(out, "      (a session envelope: from here on, every message of up to 256 bytes and")
	fmt.Fprintln(out, "      every receipt has this one size)")
	if err := alice.receiveAll(ctx, r); err != nil {
		return nil, err
	}

	// Two messages delivered out of order, then one the relay drops.
	fmt.Fprintln(out, "\n-- the relay delivers the next two in reverse order")
	for _, s := range []string{"first", "second"} {
		if err := alice.send(ctx, r, s); err != nil {
			return nil, err
		}
	}
	if err := bob.receiveAll(ctx, r, 1, 0); err != nil {
		return nil, err
	}
	fmt.Fprintln(out, "\n-- the relay drops the next message")
	if err := alice.send(ctx, r, "this one is dropped"); err != nil {
		return nil, err
	}
	r.take(bob.dev.Mailbox())
	fmt.Fprintln(out, "      relay: (drops it)")
	if err := alice.send(ctx, r, "did you get my last one?"); err != nil {
		return nil, err
	}
	if err := bob.receiveAll(ctx, r); err != nil {
		return nil, err
	}

	// Receipts leave after a random delay, batched; a read receipt rides
	// along with Bob's next message.
	fmt.Fprintln(out, "\n-- 31 s later (receipts wait a random 1-30 s), Bob's queued delivery receipts leave")
	now = now.Add(31 * time.Second)
	if err := bob.flush(ctx, r); err != nil {
		return nil, err
	}
	if err := alice.receiveAll(ctx, r); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "bob   reads %q; the read receipt waits for his next message\n", bob.last.Body)
	if err := bob.dev.Acknowledge(ctx, aliceAddr, sealpost.KindRead, bob.last.ID); err != nil {
		return nil, err
	}
	if err := bob.send(ctx, r, "No, something went missing."); err != nil {
		return nil, err
	}
	if err := alice.receiveAll(ctx, r); err != nil {
		return nil, err
	}

	fmt.Fprintln(out, "\nStill open at the end (a finding that never closes is a real loss):")
	for _, u := range []*user{bob, alice} {
		for _, f := range u.dev.Findings(u.peer) {
			fmt.Fprintf(out, "%-5s   %v%s\n", u.name, f, u.explain(f, true))
		}
	}

	a, err := alice.dev.SafetyNumber(bobAddr)
	if err != nil {
		return nil, err
	}
	b, err := bob.dev.SafetyNumber(aliceAddr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "\nsafety number (alice) %s\nsafety number (bob)   %s\n", a, b)
	if a != b {
		return nil, fmt.Errorf("safety numbers differ")
	}
	fmt.Fprintln(out, "Alice and Bob compare these 60 digits in person or over a call, or one scans the")
	fmt.Fprintln(out, "other's QR code (keys.Scannable): equal numbers mean no one sits between their")
	fmt.Fprintln(out, "devices. If a peer's number changes later (new phone, or an attacker), compare again.")

	if err := sendFile(ctx, r, alice, bob); err != nil {
		return nil, err
	}
	summarize(out, r, c)
	if err := linkLaptop(ctx, r, c, alice, bob, clock); err != nil {
		return nil, err
	}
	return r, nil
}

// The file Alice sends: a few KB made in memory.
const (
	fileName = "lunch-notes.txt"
	fileType = "text/plain; charset=utf-8"
)

func fileContent() []byte {
	var b bytes.Buffer
	for i := 1; b.Len() < 3000; i++ {
		fmt.Fprintf(&b, "%3d. noon, the usual place; Bob brings the missing message.\n", i)
	}
	return b.Bytes()[:3000]
}

// sendFile: Alice encrypts a file into a blob (a fresh key, padded to a
// size bucket), puts it in the relay's blob store and sends Bob its
// pointer inside a sealed message; Bob downloads the blob, which checks
// every chunk and the digest, and gets the file back. The relay's view of
// the blob is printed: its size and its first bytes, nothing else.
func sendFile(ctx context.Context, r *relay, alice, bob *user) error {
	out := alice.out
	file := fileContent()
	fmt.Fprintf(out, "\n-- Alice sends Bob a file, %q (%d bytes), through the relay's blob store\n", fileName, len(file))
	p, err := attach.Upload(ctx, &r.blobs, bytes.NewReader(file), attach.WithName(fileName), attach.WithMediaType(fileType))
	if err != nil {
		return err
	}
	blob := r.blobs.blobs[p.ID]
	fmt.Fprintf(out, "alice encrypts it under a fresh file key and uploads the blob\n")
	padded := attach.PaddedLength(int64(len(file)))
	fmt.Fprintf(out, "      relay: stores a blob of %d bytes under a random id: the %d-byte file padded\n", len(blob), len(file))
	fmt.Fprintf(out, "      to the %d-byte size bucket, plus %d bytes of header, tag and trailer\n",
		padded, int64(len(blob))-padded)
	fmt.Fprintf(out, "      relay: the blob's first 16 bytes: %s\n", hex.EncodeToString(blob[:16]))
	fmt.Fprintln(out, "      (01 is the format version, then the random header nonce; all after is ciphertext)")
	for _, what := range []struct{ label, text string }{{"name", fileName}, {"media type", fileType}, {"text", "the usual place"}} {
		if bytes.Contains(blob, []byte(what.text)) {
			return fmt.Errorf("the blob holds the file's %s in the clear", what.label)
		}
	}
	fmt.Fprintln(out, "      relay: the file's name, media type and text appear nowhere in the blob: they travel in")
	fmt.Fprintln(out, "      the pointer, inside Alice's sealed message, with the file key")
	if err := alice.send(ctx, r, "the notes, as promised", p); err != nil {
		return err
	}
	if err := bob.receiveAll(ctx, r); err != nil {
		return err
	}
	in := bob.last
	if len(in.Attachments) != 1 {
		return fmt.Errorf("bob got %d attachments", len(in.Attachments))
	}
	var got bytes.Buffer
	if err := attach.Download(ctx, &r.blobs, in.Attachments[0], &got); err != nil {
		return fmt.Errorf("bob's download: %w", err)
	}
	if !bytes.Equal(got.Bytes(), file) {
		return fmt.Errorf("bob's download differs from Alice's file")
	}
	fmt.Fprintf(out, "bob   downloads the blob: every chunk and the digest check out; %d bytes, the same as Alice's file\n", got.Len())
	return nil
}

// summarize prints what the relay saw over the whole conversation.
func summarize(out io.Writer, r *relay, c *convo) {
	count := map[int]int{}
	for _, n := range r.sizes {
		count[n]++
	}
	sizes := make([]int, 0, len(count))
	for n := range count {
		sizes = append(sizes, n)
	}
	slices.SortFunc(sizes, func(a, b int) int { return cmp.Compare(count[b], count[a]) })
	fmt.Fprintf(out, "\nThe relay saw %d envelopes (%d messages, %d with receipts only): mailbox, size and\n",
		len(r.sizes), c.messages, c.receipts)
	fmt.Fprintln(out, "tag only; no sender, no content, no kind.")
	for _, n := range sizes {
		what := "session envelopes: messages and receipts alike, one size"
		if c.first[n] {
			what = "first contacts, larger because they carry the session start until Bob replied"
		}
		fmt.Fprintf(out, "  %2d × %5d bytes: %s\n", count[n], n, what)
	}
}
