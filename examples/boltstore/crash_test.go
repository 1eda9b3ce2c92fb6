package boltstore

// The crash harness of checklist item 34 (TESTING.md). The test binary re-executes
// itself as a child that hosts two Devices, Alice and Bob, each on its own
// bbolt file, and plays a random conversation between them: Send (bursts;
// first contacts until Bob's reply reaches Alice, then ratchet messages),
// Receive of a random envelope of the inbox (so out of order), Done for
// two in three, Acknowledge, Flush. One receive in four is a ReceiveBatch
// (docs/SPEC.md 15.12) of 2 to 16 random envelopes of the inbox (all of
// it if fewer), in random order, one batch in three with a second copy of
// one of them, then Done for two in three of its results. The parent
// plays the relay: it hands each child every envelope not yet
// acknowledged, plus now and then one that was (a lost ack), and
// SIGKILLs the child at a random time, then starts the next child on the
// same files. A kill hits both devices at once; each file must hold on
// its own.
//
// The child behaves as an app using the outbox (docs/SPEC.md 15.2, 17.10):
// at start it calls Unsent on each device and hands the relay every
// envelope listed, then reports them Sent; and it reports each envelope
// Send or Flush returns Sent once its line is written (the relay holds
// it). A kill between the line and Sent just means the next start lists
// it again, and an envelope whose Send committed but whose line the kill
// cut is listed there too, so no committed envelope is lost to the relay.
//
// The child writes one line after each call returns (and one before), and
// the parent knows only what those lines say; a line cut by the kill does
// not count, so "returned" means "its line was written", or, for an
// envelope whose line was cut, "Unsent listed it". A ReceiveBatch releases
// all its results or none: the parent holds its result lines (one per
// envelope, as Receive's) until the batchend line after them, and a kill
// before that line means none was released, so the next child must hand
// those envelopes as new, or as Redelivered (its Apply committed), never
// as ErrDuplicate. Once batchend is written each result is checked as one
// of Receive, in order, so a second copy in the same batch must be
// Redelivered. Of a batch a kill cut, the envelopes no earlier call cut by
// a kill may have received must come back all new or all Redelivered: the
// Apply committed all of them or none. From the lines the parent checks,
// as each one comes:
//
//   - no key reuse: no two envelopes Send or Flush returned or Unsent
//     revealed carry the same routing tag (a session tag is HMAC(tag key,
//     n), so a repeated tag is a repeated chain position, i.e. a reused
//     message key), nor the same bytes or message id; an envelope Unsent
//     lists again is recognised by its bytes as the same one; and no
//     delivered envelope is ever refused, which is what a reused
//     first-contact key (its outer tag is random) causes;
//   - the outbox: Unsent lists, oldest first, every envelope of the device
//     whose Sent was never called, none whose Sent returned, and nothing
//     new but what the Send (with the body it was given) or Flush cut by
//     the last kill committed;
//   - nothing handed twice: an envelope is handed to the app again only with
//     Redelivered set, never after its Done returned; after that, every
//     redelivery is ErrDuplicate;
//   - nothing lost: ErrDuplicate only for an envelope whose Done was called;
//     every result carries the id, body and sender that were sent; a device
//     that has received from its peer never loses its session;
//   - no fork, identity-changed, or receipt-mismatch finding, which is what
//     a rolled-back store shows the peer, and no lost finding (a content
//     given up); gap and drop findings come and go as the relay reorders
//     and holds envelopes.
//
// After the last kill on a pair, a run that is not killed delivers
// everything (what the relay holds and what Unsent lists), and the parent
// checks that neither device's Findings about the other holds a gap, drop
// or lost finding, or any other: every content either side ever committed
// reached its peer, including those no line reported (issue 15: a SIGKILL
// at any point of Send never loses an envelope); that every envelope
// returned or listed, so every message id committed, was handed as new
// exactly once, and Done, and left its sender's outbox; and that a
// message then goes each way (the conversation resumes).
//
// The library forgets on purpose after a while, and the checks follow its
// documented bounds, with a margin of one unprinted commit per kill (the
// batch's envelopes for a kill during a ReceiveBatch): a
// redelivery after Done is ErrDecrypt rather than ErrDuplicate once
// ratchet.ReplayRecord later messages were consumed (and its chain is
// gone); a receipt for a message older than the sender's transcript.MaxLog
// contents is a receipt mismatch; Acknowledge of a message older than the
// received log is ErrNotFound. The relay here holds some envelopes for many
// runs, so these happen.
//
// Kill times: the child writes its lines to a file, not a pipe (a pipe
// wakes the parent at each line, and the child is then often parked right
// after the line, which bunched the kills there). The parent kills at a
// time uniform over a window that tracks the length of a whole run, from
// the child's ready signal; one kill in twenty lands during the start.
// The test logs which call each kill interrupted (send, recv, batch,
// done, flush, ack, unsent, sent (Device.Sent), start, or between calls;
// "batch (results)" once ReceiveBatch returned but before batchend; "at
// start" while the child posts what Unsent listed), how many envelopes
// the outbox recovered, how many ReceiveBatch calls were counted, and on
// which side of its Apply each killed batch was cut.
// TestCrashCatchesLostWrites runs the same harness on a store that
// acknowledges each write before it is durable, and passes only if a
// check catches it.
//
// Run: go test -run '^TestCrash' ./boltstore [-crash.iterations=1000]
// [-crash.seed=N]. The seed (logged) fixes every random choice of parent
// and children, but what a child did before its kill depends on timing, so
// a failure replays only statistically: rerun with its seed and more
// iterations.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/ratchet"
	"github.com/sealpost/sealpost/transcript"
)

var (
	crashIterations = flag.Int("crash.iterations", 200, "SIGKILLs TestCrash delivers (one iteration is one kill)")
	crashSeed       = flag.Uint64("crash.seed", 0, "seed of TestCrash's random choices (0: from the clock); the kill times still vary")
	crashBudget     = flag.Duration("crash.budget", 0, "stop TestCrash after this long, whatever crash.iterations says (0: no limit)")
)

const (
	crashEnv          = "BOLTSTORE_CRASH_CHILD" // the child's plan file
	crashKillsPerPair = 10                      // kills on one pair of files before the final run
	crashSteps        = 24                      // actions of a child that is not killed
)

var (
	aliceAddr = sealpost.Address{User: "alice", Device: 1}
	bobAddr   = sealpost.Address{User: "bob", Device: 1}
)

// crashPlan is what the parent hands one child.
type crashPlan struct {
	Dir   string
	Run   int    // makes message bodies unique
	Seed  uint64 // of the child's choices
	Final bool   // deliver everything, Done everything, then a message each way
	// Inbox holds, per device name, what the relay delivers: every
	// envelope not yet acknowledged, and some that were (a lost ack).
	Inbox map[string][][]byte
	// LoseLastWrite runs the devices on a broken store that acknowledges
	// each Apply before it is durable (see laggingStore), for
	// TestCrashCatchesLostWrites.
	LoseLastWrite bool
}

// TestCrashChild is the child process of TestCrash (see the file comment);
// run directly, it skips. It prints these lines, each in one write(2) on
// an unbuffered file, so a printed line is a whole line:
//
//	ready
//	op <unsent|sent|done|flush|ack> <dev>    before each call (sent: Device.Sent)
//	op recv <dev> <env key>                  before each Receive
//	op send <dev> <body>                     before each Send
//	op batch <dev> <env key,env key,...>     before each ReceiveBatch, its envelopes in order
//	batchend <dev> <n>                       after the n recv lines of a ReceiveBatch
//	unsent <dev> <id> <envelope>             Unsent returned it (at start)
//	unsentend <dev> <n>                      Unsent returned n envelopes
//	marked <dev> <n>                         Sent returned for the last n reported
//	sent <dev> <id> <envelope> <body|->      Send or Flush returned it
//	nosession <dev>                          Send: ErrNoSession
//	recv <dev> <env key> ok <from> <kind> <id> <redelivered> <will Done> <body|-> <receipt ids|-> <findings|->
//	recv <dev> <env key> dup                 ErrDuplicate
//	recv <dev> <env key> err <decrypt|other> <error>
//	done <dev> <id>
//	ack <dev> <id> <ok|notfound>             Acknowledge(KindRead) returned
//	flushed <dev> <n>
//	resume                                   (final run) everything delivered
//	findings <dev> <findings|->              (final run) Findings about the peer, at the end
//	end
//
// Ids, envelopes and bodies are hex; the env key is envKey of the bytes;
// findings are kind/seq/id+id.
func TestCrashChild(t *testing.T) {
	planPath := os.Getenv(crashEnv)
	if planPath == "" {
		t.Skip("the child of TestCrash")
	}
	// The parent starts its kill clock when a byte arrives on fd 3.
	if err := crashChild(planPath, os.Stdout, os.NewFile(3, "ready")); err != nil {
		fmt.Fprintln(os.Stdout, "fatal", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(3)
	}
	os.Exit(0)
}

// envKey names an envelope in the child's lines.
func envKey(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

// crashDevice is one of the child's two devices.
type crashDevice struct {
	name  string
	addr  sealpost.Address
	peer  *crashDevice
	d     *sealpost.Device
	inbox [][]byte             // envelopes the relay has for it this run
	got   []sealpost.MessageID // messages handed this run, for Acknowledge
}

type crashChildState struct {
	ctx  context.Context
	out  *os.File
	rng  *rand.Rand
	plan crashPlan
	devs [2]*crashDevice
	sent int
}

func (c *crashChildState) printf(format string, args ...any) {
	fmt.Fprintf(c.out, format+"\n", args...)
}

func crashChild(planPath string, out, ready *os.File) error {
	raw, err := os.ReadFile(planPath)
	if err != nil {
		return err
	}
	c := &crashChildState{ctx: context.Background(), out: out}
	if err := json.Unmarshal(raw, &c.plan); err != nil {
		return err
	}
	c.rng = rand.New(rand.NewPCG(c.plan.Seed, c.plan.Seed^0x9e3779b97f4a7c15))
	for i, who := range []struct {
		name string
		addr sealpost.Address
	}{{"alice", aliceAddr}, {"bob", bobAddr}} {
		bs, err := Open(filepath.Join(c.plan.Dir, who.name+".db"))
		if err != nil {
			return err
		}
		defer bs.Close()
		var s sealpost.Store = bs
		if c.plan.LoseLastWrite {
			ls := &laggingStore{Store: bs}
			defer ls.flush(c.ctx) // runs before bs.Close: a run that ends loses nothing
			s = ls
		}
		d, err := sealpost.Open(c.ctx, s, who.addr, sealpost.WithReceiptDelay(0, 0))
		if err != nil {
			return err
		}
		c.devs[i] = &crashDevice{name: who.name, addr: who.addr, d: d, inbox: c.plan.Inbox[who.name]}
	}
	c.devs[0].peer, c.devs[1].peer = c.devs[1], c.devs[0]
	c.printf("ready")
	if ready != nil {
		ready.Write([]byte{1})
		ready.Close()
	}
	// What an app does at start (docs/SPEC.md 15.2): post every envelope
	// the outbox still holds, then report it Sent.
	for _, d := range c.devs {
		if err := c.reportUnsent(d); err != nil {
			return err
		}
	}
	if c.plan.Final {
		return c.final()
	}
	for range crashSteps {
		if err := c.step(); err != nil {
			return err
		}
	}
	c.printf("end")
	return nil
}

// step does one random action: a burst of sends, a receive (of a random
// envelope of the inbox, so out of order), a flush or a read receipt.
func (c *crashChildState) step() error {
	d := c.devs[c.rng.IntN(2)]
	switch r := c.rng.IntN(100); {
	case r < 30:
		for range 1 + c.rng.IntN(3) {
			if err := c.send(d); err != nil {
				return err
			}
		}
		return nil
	case r < 85:
		if len(d.inbox) == 0 {
			d = d.peer
		}
		if len(d.inbox) == 0 {
			return c.send(d)
		}
		if c.rng.IntN(4) == 0 {
			return c.receiveBatch(d)
		}
		return c.receive(d, c.rng.IntN(len(d.inbox)), c.rng.IntN(3) != 0)
	case r < 95:
		return c.flush(d)
	default:
		if len(d.got) == 0 {
			return c.flush(d)
		}
		id := d.got[c.rng.IntN(len(d.got))]
		c.printf("op ack %s", d.name)
		err := d.d.Acknowledge(c.ctx, d.peer.addr, sealpost.KindRead, id)
		switch {
		case errors.Is(err, sealpost.ErrNotFound):
			c.printf("ack %s %x notfound", d.name, id[:]) // the parent decides
		case err != nil:
			return fmt.Errorf("%s: Acknowledge: %w", d.name, err)
		default:
			c.printf("ack %s %x ok", d.name, id[:])
		}
		return nil
	}
}

// final delivers everything and calls Done for all of it, then sends a
// message each way (Alice first, so Bob has a session even if none of
// Alice's earlier messages was ever returned) and delivers those too.
func (c *crashChildState) final() error {
	if err := c.drain(); err != nil {
		return err
	}
	c.printf("resume")
	for _, d := range c.devs {
		if err := c.send(d); err != nil {
			return err
		}
		if err := c.drain(); err != nil {
			return err
		}
	}
	for _, d := range c.devs {
		c.printf("findings %s %s", d.name, formatFindings(d.d.Findings(d.peer.addr)))
	}
	c.printf("end")
	return nil
}

// drain receives and Dones every envelope of both inboxes, and the
// receipts Flush makes for them, until nothing is left.
func (c *crashChildState) drain() error {
	for {
		for _, d := range c.devs {
			for len(d.inbox) > 0 {
				if err := c.receive(d, c.rng.IntN(len(d.inbox)), true); err != nil {
					return err
				}
			}
		}
		for _, d := range c.devs {
			if err := c.flush(d); err != nil {
				return err
			}
		}
		if len(c.devs[0].inbox)+len(c.devs[1].inbox) == 0 {
			return nil
		}
	}
}

func (c *crashChildState) send(d *crashDevice) error {
	c.sent++
	body := fmt.Appendf(nil, "run %d message %d from %s", c.plan.Run, c.sent, d.name)
	c.printf("op send %s %x", d.name, body)
	o, err := d.d.Send(c.ctx, d.peer.addr, body)
	if errors.Is(err, sealpost.ErrNoSession) {
		c.printf("nosession %s", d.name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: Send: %w", d.name, err)
	}
	c.printf("sent %s %x %x %x", d.name, o.ID[:], o.Envelope, body)
	d.peer.inbox = append(d.peer.inbox, o.Envelope) // posted
	return c.markSent(d, o)
}

// reportUnsent hands the relay every envelope d's outbox still holds
// (Unsent, oldest first), as an app does at start, then reports them Sent.
// A kill before Sent commits means the next start reports them again.
func (c *crashChildState) reportUnsent(d *crashDevice) error {
	c.printf("op unsent %s", d.name)
	outs, err := d.d.Unsent(c.ctx)
	if err != nil {
		return fmt.Errorf("%s: Unsent: %w", d.name, err)
	}
	for _, o := range outs {
		c.printf("unsent %s %x %x", d.name, o.ID[:], o.Envelope)
		d.peer.inbox = append(d.peer.inbox, o.Envelope)
	}
	c.printf("unsentend %s %d", d.name, len(outs))
	return c.markSent(d, outs...)
}

// markSent reports outs Sent, once their lines are written (the relay
// holds them).
func (c *crashChildState) markSent(d *crashDevice, outs ...*sealpost.Outgoing) error {
	if len(outs) == 0 {
		return nil
	}
	c.printf("op sent %s", d.name)
	if err := d.d.Sent(c.ctx, outs...); err != nil {
		return fmt.Errorf("%s: Sent: %w", d.name, err)
	}
	c.printf("marked %s %d", d.name, len(outs))
	return nil
}

func (c *crashChildState) flush(d *crashDevice) error {
	c.printf("op flush %s", d.name)
	outs, err := d.d.Flush(c.ctx)
	for _, o := range outs {
		c.printf("sent %s %x %x -", d.name, o.ID[:], o.Envelope)
		d.peer.inbox = append(d.peer.inbox, o.Envelope)
	}
	if err != nil {
		return fmt.Errorf("%s: Flush: %w", d.name, err)
	}
	c.printf("flushed %s %d", d.name, len(outs))
	return c.markSent(d, outs...)
}

// receive takes inbox[i] out of d's inbox and receives it; with done, it
// then calls Done. A result not Done comes back in a later run, since the
// relay redelivers what was never acknowledged.
func (c *crashChildState) receive(d *crashDevice, i int, done bool) error {
	raw := d.inbox[i]
	d.inbox = slices.Delete(d.inbox, i, i+1)
	c.printf("op recv %s %s", d.name, envKey(raw))
	in, err := d.d.Receive(c.ctx, raw)
	if !c.printResult(d, envKey(raw), in, err, done) || !done {
		return nil
	}
	return c.done(d, in.ID)
}

// receiveBatch takes 2 to 16 random envelopes out of d's inbox (all of it
// if it holds fewer), in random order, sometimes with a second copy of one
// of them, and receives them with one ReceiveBatch (docs/SPEC.md 15.12).
// Its op line names the envelopes; once the call returns, one recv line
// per envelope, in order, then a batchend line; then Done for the results
// picked (the same choice for both copies of an envelope, and one Done
// per message). The parent counts the results only once batchend is
// written: a batch releases all its results or none.
func (c *crashChildState) receiveBatch(d *crashDevice) error {
	n := min(2+c.rng.IntN(15), len(d.inbox))
	c.rng.Shuffle(len(d.inbox), func(i, j int) { d.inbox[i], d.inbox[j] = d.inbox[j], d.inbox[i] })
	batch := slices.Clone(d.inbox[:n])
	d.inbox = slices.Delete(d.inbox, 0, n)
	if c.rng.IntN(3) == 0 {
		i := c.rng.IntN(len(batch) + 1)
		batch = slices.Insert(batch, i, batch[c.rng.IntN(len(batch))]) // a copy, after or before the first
	}
	keys := make([]string, len(batch))
	doneFor := map[string]bool{}
	for i, raw := range batch {
		keys[i] = envKey(raw)
		if _, ok := doneFor[keys[i]]; !ok {
			doneFor[keys[i]] = c.rng.IntN(3) != 0
		}
	}
	c.printf("op batch %s %s", d.name, strings.Join(keys, ","))
	res, err := d.d.ReceiveBatch(c.ctx, batch)
	if err != nil {
		return fmt.Errorf("%s: ReceiveBatch: %w", d.name, err)
	}
	if len(res) != len(batch) {
		return fmt.Errorf("%s: ReceiveBatch returned %d results for %d envelopes", d.name, len(res), len(batch))
	}
	var toDone []sealpost.MessageID
	for i, r := range res {
		if c.printResult(d, keys[i], r.Incoming, r.Err, doneFor[keys[i]]) && doneFor[keys[i]] && !slices.Contains(toDone, r.Incoming.ID) {
			toDone = append(toDone, r.Incoming.ID)
		}
	}
	c.printf("batchend %s %d", d.name, len(res))
	for _, id := range toDone {
		if err := c.done(d, id); err != nil {
			return err
		}
	}
	return nil
}

// printResult writes the recv line of one envelope's result and reports
// whether it was handed (an ok line).
func (c *crashChildState) printResult(d *crashDevice, key string, in *sealpost.Incoming, err error, done bool) bool {
	switch {
	case errors.Is(err, sealpost.ErrDuplicate):
		c.printf("recv %s %s dup", d.name, key)
		return false
	case err != nil:
		class := "other"
		if errors.Is(err, sealpost.ErrDecrypt) {
			class = "decrypt"
		}
		c.printf("recv %s %s err %s %s", d.name, key, class, strings.ReplaceAll(err.Error(), "\n", " "))
		return false // the parent decides
	}
	body := "-"
	if len(in.Body) > 0 {
		body = hex.EncodeToString(in.Body)
	}
	var ids []string
	for _, id := range slices.Concat(in.Delivered, in.Read) {
		ids = append(ids, hex.EncodeToString(id[:]))
	}
	c.printf("recv %s %s ok %s %d %x %t %t %s %s %s", d.name, key, in.From.User, in.Kind, in.ID[:], in.Redelivered, done,
		body, orDash(strings.Join(ids, ",")), formatFindings(in.Findings))
	if in.Kind == sealpost.KindMessage {
		d.got = append(d.got, in.ID)
	}
	return true
}

func (c *crashChildState) done(d *crashDevice, id sealpost.MessageID) error {
	c.printf("op done %s", d.name)
	if err := d.d.Done(c.ctx, id); err != nil {
		return fmt.Errorf("%s: Done: %w", d.name, err)
	}
	c.printf("done %s %x", d.name, id[:])
	return nil
}

// formatFindings writes findings as kind/seq/id+id... (the parent judges a
// receipt mismatch by its ids), comma-separated, or "-".
func formatFindings(fs []transcript.Finding) string {
	var findings []string
	for _, f := range fs {
		fids := make([]string, len(f.IDs))
		for i, id := range f.IDs {
			fids[i] = hex.EncodeToString(id[:])
		}
		findings = append(findings, fmt.Sprintf("%s/%d/%s", strings.ReplaceAll(f.Kind.String(), " ", "_"), f.Seq, orDash(strings.Join(fids, "+"))))
	}
	return orDash(strings.Join(findings, ","))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// laggingStore is a broken Store for TestCrashCatchesLostWrites: Apply
// returns at once and the batch reaches the file only at the next Apply
// (or at a clean exit), so a kill loses the last write the Device was told
// had committed. Get reads through the pending batch.
type laggingStore struct {
	*Store
	pending map[string][]byte // nil value: a delete
}

func (l *laggingStore) Apply(ctx context.Context, b *sealpost.Batch) error {
	if err := l.flush(ctx); err != nil {
		return err
	}
	l.pending = map[string][]byte{}
	return b.Each(func(key string, value []byte, deleted bool) error {
		if deleted {
			l.pending[key] = nil
		} else {
			l.pending[key] = append([]byte{}, value...) // not nil, even if empty
		}
		return nil
	})
}

func (l *laggingStore) Get(ctx context.Context, key string) ([]byte, error) {
	if v, ok := l.pending[key]; ok {
		if v == nil {
			return nil, fmt.Errorf("%w: %q", sealpost.ErrNotFound, key)
		}
		return append([]byte{}, v...), nil
	}
	return l.Store.Get(ctx, key)
}

func (l *laggingStore) flush(ctx context.Context) error {
	if l.pending == nil {
		return nil
	}
	b := new(sealpost.Batch)
	for k, v := range l.pending {
		if v == nil {
			b.Delete(k)
		} else {
			b.Put(k, v)
		}
	}
	l.pending = nil
	return l.Store.Apply(ctx, b)
}

// crashEnvelope is what the parent (the relay) knows of one envelope a
// child printed as returned by Send or Flush.
type crashEnvelope struct {
	key      string
	from, to string
	raw      []byte
	id       sealpost.MessageID // Outgoing.ID; zero for receipts
	body     []byte
	receipt  bool
	gotID    sealpost.MessageID // Incoming.ID, once handed
	handed   bool               // an ok line printed
	doneNext bool               // the last ok line said Done follows
	acked    bool               // done or dup printed: the relay drops it
	fresh    int                // ok lines with Redelivered false
	// consumedAt counts the envelopes the device had consumed before
	// this one, by the lines.
	consumedAt   int
	sentRun, seq int
	sentIndex    int // contents its sender had returned before it
	sentConsumed int // envelopes its recipient had consumed when it was sent
	handedRun    int
	box          boxState
	recovered    bool // first seen in Unsent: its Send or Flush line was cut by a kill
	// killedBatch is the ReceiveBatch a kill cut before its batchend
	// line, while this envelope had never been handed.
	killedBatch *killedBatch
	// maybeCommitted: a Receive or ReceiveBatch of it, never handed, was
	// cut by a kill, so it may come back Redelivered.
	maybeCommitted bool
}

// killedBatch tells, from what the next children hand, on which side of
// its Apply a kill cut a ReceiveBatch: an envelope of it handed as new
// means the Apply had not committed; one handed as Redelivered (and none
// as new), that it had. It counts only the envelopes never handed that no
// other call cut by a kill may have committed, so both at once is a batch
// committed in part.
type killedBatch struct{ fresh, redelivered int }

// boxState is what the parent knows of an envelope's place in its sender's
// outbox.
type boxState uint8

const (
	boxed   boxState = iota // returned or reported, Sent not called: Unsent must list it
	marking                 // Sent called, not returned: Unsent may list it
	gone                    // Sent returned: Unsent must not list it
)

// crashStats are the counts the test logs.
type crashStats struct {
	runs, kills, pairs         int
	missed                     int            // runs that ended before their kill
	longestPair                int            // envelopes returned on one pair
	window, startEst           time.Duration  // the kill window after ready; how long a child takes to be ready
	killedIn                   map[string]int // the call in flight at each kill
	messages, receipts         int            // envelopes printed as returned
	handed, redelivered        int
	commitBeforePrint          int // Redelivered with no earlier ok line
	dupAfterDone, dupUnprinted int // ErrDuplicate after a printed Done / a Done cut by the kill
	gaps                       int // gap, drop and lost findings (out of order, or eaten by a kill)
	oldReplays                 int // redeliveries after Done past the replay record: ErrDecrypt
	oldReceipts                int // receipts for messages older than the sender's log
	oldAcks                    int // Acknowledge of messages older than the received log
	recovered                  int // envelopes first seen in Unsent (the kill cut their Send or Flush line)
	reposted                   int // envelopes Unsent listed again (the kill came before Sent returned)
	batches, batchEnvs, copies int // ReceiveBatch calls whose lines were all written, their envelopes, second copies in them
	batchKilledBefore          int // killed ReceiveBatch calls an envelope of which came back new
	batchKilledAfter           int // ... came back Redelivered, none new
}

// crashPair is the parent's view of one pair of bbolt files.
type crashPair struct {
	t          *testing.T
	dir        string
	mailbox    map[string][]byte
	envs       map[string]*crashEnvelope
	order      []*crashEnvelope
	tags       map[[16]byte]*crashEnvelope
	ids        map[sealpost.MessageID]*crashEnvelope
	hasSession map[string]bool // an ok line proves the device has a session
	consumed   map[string]int  // envelopes each device was handed, by the lines
	sentBy     map[string]int  // envelopes each device returned, by the lines
	kills      int             // on this pair
	stats      *crashStats
	lossy      bool         // the child runs on laggingStore
	onFail     func(string) // a check failed: t.Fatal, or the self-test's catch

	// unprinted bounds the receives the kills on this pair may have
	// committed without a line: one per kill, or the batch's envelopes
	// for a kill during a ReceiveBatch.
	unprinted     int
	killedBatches []*killedBatch

	// Per device, across runs: the body of a Send whose op line was
	// printed and whose sent line was not, and whether a Flush was in the
	// same state, until Unsent settles what they committed.
	pendingSend  map[string][]byte
	pendingFlush map[string]bool

	// per run
	run        int
	lastOp     string
	opOpen     bool
	resume     bool
	resumeSent map[string]*crashEnvelope
	ended      bool
	reporting  bool                        // no call but Unsent and Sent yet
	toMark     map[string][]*crashEnvelope // returned or reported since the last op sent
	marking    map[string][]*crashEnvelope // the current Sent call's
	listed     map[*crashEnvelope]bool     // the current Unsent report's
	listedLast int                         // seq of the last envelope listed
	findings   map[string]string           // the final run's findings lines
	batch      *crashBatch                 // the ReceiveBatch whose batchend line is not written yet
	opLine     string                      // the last op line
}

// crashBatch is a ReceiveBatch in flight: its op line named the
// envelopes; its recv lines are held until its batchend line, since a
// batch releases all its results or none (docs/SPEC.md 15.12).
type crashBatch struct {
	dev     string
	keys    []string
	results [][]string
}

func peerOf(dev string) string {
	if dev == "alice" {
		return "bob"
	}
	return "alice"
}

// newCrashPair makes Alice's and Bob's devices on two fresh bbolt files;
// Alice starts a session from Bob's bundle (with a one-time prekey), so her
// first envelopes are first contacts until Bob's first reply reaches her.
func newCrashPair(t *testing.T, stats *crashStats) *crashPair {
	t.Helper()
	ctx := context.Background()
	p := &crashPair{
		t: t, dir: t.TempDir(), mailbox: map[string][]byte{},
		envs: map[string]*crashEnvelope{}, tags: map[[16]byte]*crashEnvelope{},
		ids: map[sealpost.MessageID]*crashEnvelope{}, hasSession: map[string]bool{"alice": true},
		consumed: map[string]int{}, sentBy: map[string]int{},
		pendingSend: map[string][]byte{}, pendingFlush: map[string]bool{},
		stats: stats,
	}
	open := func(name string, addr sealpost.Address) (*Store, *sealpost.Device) {
		s, err := Open(filepath.Join(p.dir, name+".db"))
		if err != nil {
			t.Fatal(err)
		}
		d, err := sealpost.Open(ctx, s, addr, sealpost.WithReceiptDelay(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		p.mailbox[name] = d.Mailbox()
		return s, d
	}
	bs, bob := open("bob", bobAddr)
	defer bs.Close()
	as, alice := open("alice", aliceAddr)
	defer as.Close()
	b, err := bob.NewBundle(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := b.Split()[0].MarshalBinary() // the one with a one-time prekey
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := keys.ParseBundle(blob)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.StartSession(ctx, bobAddr, parsed); err != nil {
		t.Fatal(err)
	}
	stats.pairs++
	return p
}

// runChild starts a child on the pair and, unless final or calibrating,
// SIGKILLs it at a random time: uniform over the run of a child that is
// not killed, counted from the child's ready signal; or, one time in
// twenty, during its start. The child writes its lines to a file, not a pipe, so
// that waking a reader does not park it right after each line and bunch
// the kills there. runChild then applies every whole line the child wrote
// to the pair, and reports whether the child was killed.
func (p *crashPair) runChild(rng *rand.Rand, final bool) (killed bool) {
	t := p.t
	t.Helper()
	p.run++
	p.stats.runs++
	plan := crashPlan{Dir: p.dir, Run: p.stats.runs, Seed: rng.Uint64(), Final: final, Inbox: map[string][][]byte{}, LoseLastWrite: p.lossy}
	for _, e := range p.order {
		// The relay delivers what was not acknowledged, and in the final
		// run everything; an acknowledged envelope comes again now and
		// then, as after a lost ack.
		if !e.acked || final || rng.IntN(4) == 0 {
			plan.Inbox[e.to] = append(plan.Inbox[e.to], e.raw)
		}
	}
	// The kill time is uniform over a window about the length of a whole
	// run on this machine (with or without -race): the very first run is
	// not killed and sets it, a run that ends before its kill shrinks it
	// by a fifth and a kill grows it by 3%, so that about one run in nine
	// ends first.
	kill, duringStart := !final && p.stats.window > 0, false
	var delay time.Duration
	if kill {
		window := p.stats.window
		if duringStart = rng.IntN(20) == 0; duringStart {
			window = p.stats.startEst
		}
		delay = time.Duration(rng.Int64N(int64(max(window, 100*time.Microsecond))))
	}
	raw, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	planPath := filepath.Join(p.dir, "plan.json")
	if err := os.WriteFile(planPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(p.dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer readyR.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	// Under -race the child would sleep a second at exit to flush reports
	// (GORACE atexit_sleep_ms); a report still fails the exit status.
	cmd.Env = append(os.Environ(), crashEnv+"="+planPath,
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = out, &stderr, []*os.File{readyW} // fd 3: ready
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readyW.Close()
	var ready time.Time
	if kill && duringStart {
		time.Sleep(delay)
		cmd.Process.Kill() // SIGKILL
	} else {
		readyR.Read(make([]byte, 1)) // a byte, or EOF if the child died first
		ready = time.Now()
		if kill {
			time.Sleep(delay)
			// The child has not been waited for, so its pid is still its
			// own even if it has exited: the signal cannot hit another.
			cmd.Process.Kill() // SIGKILL
		}
	}
	err = cmd.Wait()
	exited := time.Now()

	raw, rerr := os.ReadFile(out.Name())
	if rerr != nil {
		t.Fatal(rerr)
	}
	if strings.Contains(stderr.String(), "DATA RACE") {
		t.Fatalf("run %d: the child found a data race:\n%s", p.run, stderr.String())
	}
	all := strings.Split(string(raw), "\n")
	all = all[:len(all)-1] // "" after the last newline, or a line cut by the kill
	p.lastOp, p.opOpen, p.resume, p.ended, p.reporting = "start", true, false, false, true
	p.resumeSent = map[string]*crashEnvelope{}
	p.toMark, p.marking, p.findings = map[string][]*crashEnvelope{}, map[string][]*crashEnvelope{}, map[string]string{}
	p.batch = nil
	for i, line := range all {
		p.apply(line, all[:i+1])
	}

	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && kill && !ee.Exited():
		killed = true
		p.kills++
		p.stats.kills++
		op := p.lastOp
		if !p.opOpen {
			op = "between calls"
		}
		p.unprinted++
		if f := strings.Fields(p.opLine); p.opOpen && len(f) == 4 && f[1] == "recv" {
			if e := p.envs[f[3]]; !e.handed {
				e.killedBatch, e.maybeCommitted = nil, true // its Receive may have committed
			}
		}
		if b := p.batch; b != nil {
			// None of its results counts: the next child receives its
			// envelopes as new, or as Redelivered if its Apply committed.
			p.unprinted += len(b.keys) - 1
			kb := &killedBatch{}
			p.killedBatches = append(p.killedBatches, kb)
			for _, k := range b.keys {
				if e := p.envs[k]; !e.handed {
					e.killedBatch = nil
					if !e.maybeCommitted {
						e.killedBatch = kb
					}
					e.maybeCommitted = true
				}
			}
			if len(b.results) > 0 {
				op = "batch (results)" // ReceiveBatch returned, its lines cut
			}
		}
		if p.reporting && p.lastOp != "start" {
			op += " (at start)" // posting what Unsent listed
		}
		p.stats.killedIn[op]++
	default:
		t.Fatalf("run %d: child: %v\nlast lines:\n%s\nstderr:\n%s", p.run, err, tail(all), stderr.String())
	}
	if !killed && !p.ended {
		t.Fatalf("run %d: the child exited without printing end:\n%s", p.run, tail(all))
	}
	switch {
	case final:
	case !kill:
		p.stats.window = exited.Sub(ready)
	case killed:
		p.stats.window += p.stats.window * 3 / 100
	default:
		p.stats.missed++ // the run ended before the delay drawn
		p.stats.window -= p.stats.window / 5
	}
	if !ready.IsZero() {
		if d := ready.Sub(started); p.stats.startEst == 0 {
			p.stats.startEst = d
		} else {
			p.stats.startEst = (3*p.stats.startEst + d) / 4
		}
	}
	return killed
}

func tail(lines []string) string {
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	var b strings.Builder
	for _, l := range lines {
		if len(l) > 200 {
			l = l[:200] + "..."
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// fail stops the test with the line being applied and the ones before it.
func (p *crashPair) fail(lines []string, format string, args ...any) {
	p.t.Helper()
	p.onFail(fmt.Sprintf("run %d: %s\nlast lines:\n%s", p.run, fmt.Sprintf(format, args...), tail(lines)))
}

func hexField(s string) ([]byte, error) {
	if s == "-" {
		return nil, nil
	}
	return hex.DecodeString(s)
}

// apply checks one whole line against what the parent knows and records it.
func (p *crashPair) apply(line string, lines []string) {
	p.t.Helper()
	f := strings.Fields(line)
	if len(f) == 0 {
		p.fail(lines, "empty line")
	}
	switch f[0] {
	case "ready":
		p.opOpen = false
	case "op":
		if len(f) != 3 && (f[1] != "send" && f[1] != "batch" && f[1] != "recv" || len(f) != 4) || p.batch != nil {
			p.fail(lines, "bad line")
		}
		p.lastOp, p.opOpen, p.opLine = f[1], true, line
		p.reporting = p.reporting && (f[1] == "unsent" || f[1] == "sent")
		p.op(f, lines)
	case "sent":
		if len(f) != 5 {
			p.fail(lines, "bad line")
		}
		p.sent(f[1], f[2], f[3], f[4], lines)
	case "unsent":
		if len(f) != 4 {
			p.fail(lines, "bad line")
		}
		p.unsent(f[1], f[2], f[3], lines)
	case "unsentend":
		if len(f) != 3 {
			p.fail(lines, "bad line")
		}
		p.unsentEnd(f[1], f[2], lines)
		p.opOpen = false
	case "marked":
		if len(f) != 3 {
			p.fail(lines, "bad line")
		}
		if n, err := strconv.Atoi(f[2]); err != nil || n != len(p.marking[f[1]]) {
			p.fail(lines, "marked %s, but %d envelopes were reported Sent", f[2], len(p.marking[f[1]]))
		}
		for _, e := range p.marking[f[1]] {
			e.box = gone
		}
		p.marking[f[1]] = nil
		p.opOpen = false
	case "findings":
		if len(f) != 3 || !p.resume {
			p.fail(lines, "bad line")
		}
		p.findings[f[1]] = f[2]
	case "nosession":
		if p.hasSession[f[1]] {
			p.fail(lines, "%s: ErrNoSession after it had received from its peer: its session was lost", f[1])
		}
		delete(p.pendingSend, f[1]) // nothing committed
		p.opOpen = false
	case "recv":
		if len(f) < 4 {
			p.fail(lines, "bad line")
		}
		if b := p.batch; b != nil {
			if f[1] != b.dev || len(b.results) == len(b.keys) || f[2] != b.keys[len(b.results)] {
				p.fail(lines, "%s: a ReceiveBatch result for another envelope than the call's next", f[1])
			}
			b.results = append(b.results, f)
			return
		}
		p.received(f, lines)
		p.opOpen = false
	case "batchend":
		b := p.batch
		if len(f) != 3 || b == nil || f[1] != b.dev || f[2] != strconv.Itoa(len(b.keys)) || len(b.results) != len(b.keys) {
			p.fail(lines, "bad batchend line")
		}
		// Each result is what Receive would have given, in order: the
		// checks of one recv line apply to each, a second copy of an
		// envelope coming after the first's result was released.
		for _, r := range b.results {
			p.received(r, lines)
		}
		p.stats.batches++
		p.stats.batchEnvs += len(b.keys)
		slices.Sort(b.keys)
		p.stats.copies += len(b.keys) - len(slices.Compact(b.keys))
		p.batch = nil
		p.opOpen = false
	case "done":
		if len(f) != 3 {
			p.fail(lines, "bad line")
		}
		p.done(f[1], f[2], lines)
		p.opOpen = false
	case "ack":
		if len(f) != 4 {
			p.fail(lines, "bad line")
		}
		p.ack(f[1], f[2], f[3], lines)
		p.opOpen = false
	case "flushed":
		p.pendingFlush[f[1]] = false
		p.opOpen = false
	case "resume":
		p.resume = true
	case "end":
		p.ended = true
	default:
		// An unexpected error in the child ("fatal ..."): a failure, but
		// not a check's, so not routed through onFail.
		p.t.Fatalf("run %d: child: %s\nlast lines:\n%s", p.run, line, tail(lines))
	}
}

// op records what a call line says is about to happen.
func (p *crashPair) op(f []string, lines []string) {
	dev := f[2]
	switch f[1] {
	case "send":
		body, err := hex.DecodeString(f[3])
		if err != nil {
			p.fail(lines, "bad op line")
		}
		p.pendingSend[dev] = body
	case "flush":
		p.pendingFlush[dev] = true
	case "sent":
		if len(p.toMark[dev]) == 0 {
			p.fail(lines, "%s: Sent called with nothing to report", dev)
		}
		for _, e := range p.toMark[dev] {
			e.box = marking
		}
		p.marking[dev], p.toMark[dev] = p.toMark[dev], nil
	case "unsent":
		p.listed, p.listedLast = map[*crashEnvelope]bool{}, -1
	case "recv":
		if e := p.envs[f[3]]; e == nil || e.to != dev {
			p.fail(lines, "%s: Receive of an envelope that was never sent to it", dev)
		}
	case "batch":
		keys := strings.Split(f[3], ",")
		for _, k := range keys {
			if e := p.envs[k]; e == nil || e.to != dev {
				p.fail(lines, "%s: ReceiveBatch of an envelope that was never sent to it", dev)
			}
		}
		p.batch = &crashBatch{dev: dev, keys: keys}
	}
}

// sent records an envelope Send or Flush returned, after the key-reuse
// checks: a fresh routing tag, fresh bytes and a fresh message id.
func (p *crashPair) sent(dev, idHex, envHex, bodyHex string, lines []string) {
	raw, err1 := hex.DecodeString(envHex)
	id, err2 := hex.DecodeString(idHex)
	body, err3 := hexField(bodyHex)
	if err := errors.Join(err1, err2, err3); err != nil || len(id) != len(sealpost.MessageID{}) {
		p.fail(lines, "bad sent line: %v", err)
	}
	if p.lastOp == "send" {
		if !bytes.Equal(body, p.pendingSend[dev]) {
			p.fail(lines, "%s: Send returned another body than it was given", dev)
		}
		delete(p.pendingSend, dev)
	}
	p.record(dev, raw, sealpost.MessageID(id), body, lines)
	if p.lastOp == "send" {
		p.opOpen = false
	}
}

// unsent checks an envelope Unsent listed at start. One the parent knows
// (its Sent did not return before a kill) is the same envelope posted
// again, not a key reuse; it must not be one whose Sent returned, and the
// list must be in the order the envelopes were made (docs/SPEC.md 15.2).
// One it does not know is what a kill cut the line of: the Send or Flush
// in flight committed it, and it is recorded as returned now, after the
// same key-reuse checks.
func (p *crashPair) unsent(dev, idHex, envHex string, lines []string) {
	raw, err1 := hex.DecodeString(envHex)
	rawID, err2 := hex.DecodeString(idHex)
	if err := errors.Join(err1, err2); err != nil || len(rawID) != len(sealpost.MessageID{}) || p.lastOp != "unsent" || !p.opOpen {
		p.fail(lines, "bad unsent line: %v", err)
	}
	id := sealpost.MessageID(rawID)
	e := p.envs[envKey(raw)]
	switch {
	case e != nil:
		switch {
		case e.from != dev || e.id != id || !bytes.Equal(e.raw, raw):
			p.fail(lines, "%s: Unsent listed envelope %d with another sender or id", dev, e.seq)
		case e.box == gone:
			p.fail(lines, "%s: Unsent listed envelope %d (sent in run %d), whose Sent had returned", dev, e.seq, e.sentRun)
		case e.seq <= p.listedLast:
			p.fail(lines, "%s: Unsent listed envelope %d after envelope %d: not in the order they were made", dev, e.seq, p.listedLast)
		}
		p.stats.reposted++
		p.toMark[dev] = append(p.toMark[dev], e)
	case id != (sealpost.MessageID{}):
		body, ok := p.pendingSend[dev]
		if !ok {
			p.fail(lines, "%s: Unsent listed message %x, which no Send cut by a kill can have made", dev, id[:])
		}
		delete(p.pendingSend, dev)
		e = p.record(dev, raw, id, body, lines)
		e.recovered = true
		p.stats.recovered++
	default:
		if !p.pendingFlush[dev] {
			p.fail(lines, "%s: Unsent listed a receipt which no Flush cut by a kill can have made", dev)
		}
		e = p.record(dev, raw, id, nil, lines)
		e.recovered = true
		p.stats.recovered++
	}
	e.box = boxed
	p.listed[e] = true
	p.listedLast = e.seq
}

// unsentEnd checks that Unsent listed every envelope of dev whose Sent
// was never called: the outbox lost none. What a kill cut mid-Sent and
// Unsent did not list was forgotten by that Sent.
func (p *crashPair) unsentEnd(dev, nStr string, lines []string) {
	if n, err := strconv.Atoi(nStr); err != nil || n != len(p.listed) || p.lastOp != "unsent" {
		p.fail(lines, "bad unsentend line")
	}
	for _, e := range p.order {
		switch {
		case e.from != dev || p.listed[e]:
		case e.box == boxed:
			p.fail(lines, "lost envelope: %s's outbox dropped envelope %d (%x, returned in run %d), whose Sent was never called", dev, e.seq, e.id[:], e.sentRun)
		case e.box == marking:
			e.box = gone
		}
	}
	// Whatever the Send or Flush cut by the last kill committed is listed
	// now; the rest of it never happened.
	delete(p.pendingSend, dev)
	p.pendingFlush[dev] = false
}

// record adds an envelope dev returned (or that Unsent revealed), after
// the key-reuse checks: a fresh routing tag, fresh bytes and a fresh
// message id.
func (p *crashPair) record(dev string, raw []byte, id sealpost.MessageID, body []byte, lines []string) *crashEnvelope {
	h, err := envelope.Parse(raw)
	if err != nil {
		p.fail(lines, "%s returned an envelope the relay cannot parse: %v", dev, err)
	}
	to := peerOf(dev)
	if !bytes.Equal(h.Mailbox, p.mailbox[to]) {
		p.fail(lines, "%s addressed an envelope to mailbox %x, not %s's", dev, h.Mailbox, to)
	}
	e := &crashEnvelope{key: envKey(raw), from: dev, to: to, raw: raw, id: id, body: body, sentRun: p.run, seq: len(p.order), sentIndex: p.sentBy[dev], sentConsumed: p.consumed[to]}
	p.sentBy[dev]++
	e.receipt = e.id == (sealpost.MessageID{})
	if p.envs[e.key] != nil {
		p.fail(lines, "%s returned the same envelope twice", dev)
	}
	if other := p.tags[h.Tag]; other != nil {
		p.fail(lines, "key reuse: %s returned two envelopes with routing tag %x (the first in run %d)", dev, h.Tag, other.sentRun)
	}
	if !e.receipt {
		if p.ids[e.id] != nil {
			p.fail(lines, "%s returned message id %x twice", dev, id)
		}
		p.ids[e.id] = e
		p.stats.messages++
	} else {
		p.stats.receipts++
	}
	p.envs[e.key], p.tags[h.Tag] = e, e
	p.order = append(p.order, e)
	if p.resume && !e.receipt {
		p.resumeSent[dev] = e
	}
	p.toMark[dev] = append(p.toMark[dev], e)
	return e
}

// received checks a recv line: the result of Receive for an envelope the
// relay delivered.
func (p *crashPair) received(f []string, lines []string) {
	dev, key, what := f[1], f[2], f[3]
	e := p.envs[key]
	if e == nil || e.to != dev {
		p.fail(lines, "%s received an envelope that was never sent to it", dev)
	}
	switch what {
	case "err":
		if len(f) < 5 {
			p.fail(lines, "bad line")
		}
		// Replays are remembered by tag for the last ratchet.ReplayRecord
		// messages; an older one from a chain the session no longer holds
		// opens under no key (ErrDecrypt). It is still not handed again.
		// The margin allows for commits the kills kept from printing; Done
		// may have committed without its line (doneNext).
		since := p.consumed[dev] - e.consumedAt
		if (e.acked || e.doneNext) && f[4] == "decrypt" && since >= ratchet.ReplayRecord-p.unprinted {
			p.stats.oldReplays++
			e.acked = true // the app drops it at the relay
			return
		}
		p.fail(lines, "%s could not receive an envelope %s sent (envelope %d, sent in run %d, handed %t in run %d, acked %t, %d consumed since): lost, or a reused key",
			dev, e.from, e.seq, e.sentRun, e.handed, e.handedRun, e.acked, since)
	case "dup":
		if len(f) != 4 {
			p.fail(lines, "bad line")
		}
		switch {
		case e.acked:
			p.stats.dupAfterDone++
		case e.doneNext:
			p.stats.dupUnprinted++ // Done committed, the kill came before its line
		default:
			p.fail(lines, "%s: ErrDuplicate for an envelope whose Done was never called: the message is lost", dev)
		}
		e.acked = true // the app acknowledges a duplicate to the relay
		return
	case "ok":
	default:
		p.fail(lines, "bad line")
	}
	if len(f) != 12 {
		p.fail(lines, "bad line")
	}
	if f[4] != e.from {
		p.fail(lines, "%s got an envelope %s sent as from %s", dev, e.from, f[4])
	}
	f = slices.Delete(f, 4, 5)
	kind, err1 := strconv.Atoi(f[4])
	rawID, err2 := hex.DecodeString(f[5])
	body, err3 := hexField(f[8])
	if err := errors.Join(err1, err2, err3); err != nil || len(rawID) != len(sealpost.MessageID{}) {
		p.fail(lines, "bad recv line: %v", err)
	}
	id := sealpost.MessageID(rawID)
	redelivered, willDone := f[6] == "true", f[7] == "true"
	switch {
	case e.acked:
		p.fail(lines, "%s was handed an envelope again after its Done (want ErrDuplicate)", dev)
	case e.handed && !redelivered:
		p.fail(lines, "%s was handed the same envelope twice as new", dev)
	case !e.handed && redelivered:
		p.stats.commitBeforePrint++ // Receive committed, the kill came before its line
	}
	if redelivered {
		p.stats.redelivered++
	} else {
		e.fresh++
	}
	if kb := e.killedBatch; kb != nil && !e.handed {
		if redelivered {
			kb.redelivered++
		} else {
			kb.fresh++
		}
		// One Apply commits the whole batch or none of it: of its
		// envelopes no other call can have committed, none comes back
		// Redelivered if one comes back new.
		if kb.fresh > 0 && kb.redelivered > 0 {
			p.fail(lines, "%s: of a ReceiveBatch cut by a kill, %d envelopes came back new and %d Redelivered: its Apply committed part of the batch", dev, kb.fresh, kb.redelivered)
		}
	}
	e.killedBatch = nil
	if !e.handed {
		// Where the device consumed it, at the earliest: a result that
		// first shows as Redelivered was consumed in some earlier run,
		// after it was sent.
		e.consumedAt = p.consumed[dev]
		if redelivered {
			e.consumedAt = e.sentConsumed
		}
		p.consumed[dev]++
	}
	if e.receipt {
		if kind != int(sealpost.KindDelivered) && kind != int(sealpost.KindRead) || len(body) != 0 {
			p.fail(lines, "a receipt envelope came out as kind %d, body %q, receipts %s", kind, body, f[9])
		}
		if e.handed && id != e.gotID {
			p.fail(lines, "a redelivered receipt changed its id")
		}
	} else if kind != int(sealpost.KindMessage) || id != e.id || !bytes.Equal(body, e.body) {
		p.fail(lines, "%s got kind %d id %x body %q; %s sent id %x body %q", dev, kind, id[:], body, e.from, e.id[:], e.body)
	}
	if f[9] != "-" {
		for _, s := range strings.Split(f[9], ",") {
			raw, err := hex.DecodeString(s)
			if m := p.ids[sealpost.MessageID(raw)]; err != nil || m == nil || m.from != dev {
				p.fail(lines, "%s got a receipt for %s, which is no message it sent", dev, s)
			}
		}
	}
	mismatch := false
	if f[10] != "-" {
		for _, k := range strings.Split(f[10], ",") {
			parts := strings.Split(k, "/")
			if len(parts) != 3 {
				p.fail(lines, "bad finding %q", k)
			}
			switch strings.ReplaceAll(parts[0], "_", " ") {
			case transcript.Gap.String(), transcript.Drop.String():
				// Messages out of order, or still in their sender's
				// outbox; the final run must close every one.
				p.stats.gaps++
			case transcript.ReceiptMismatch.String():
				// Legitimate only for ids of ours older than the sent log
				// (transcript.MaxLog contents); the margin allows for sends
				// the kills kept from printing.
				if parts[1] != "0" || parts[2] == "-" {
					p.fail(lines, "%s: a receipt with a hash other than ours: %s", dev, k)
				}
				for _, s := range strings.Split(parts[2], "+") {
					raw, err := hex.DecodeString(s)
					m := p.ids[sealpost.MessageID(raw)]
					if err != nil || m == nil || m.from != dev {
						p.fail(lines, "%s: a receipt names %s, which is no message it sent", dev, s)
					}
					if since := p.sentBy[dev] - m.sentIndex; since < transcript.MaxLog-p.kills {
						p.fail(lines, "%s: a receipt names message %s as unknown, although only %d contents followed it", dev, s, since)
					}
				}
				mismatch = true
				p.stats.oldReceipts++
			default:
				p.fail(lines, "%s: finding %s (a rolled-back or inconsistent store)", dev, k)
			}
		}
	}
	if e.receipt && f[9] == "-" && !mismatch {
		p.fail(lines, "a receipt without ids, and no receipt-mismatch finding")
	}
	if !e.handed {
		e.handedRun = p.run
	}
	e.handed, e.gotID, e.doneNext = true, id, willDone
	p.hasSession[dev] = true
	p.stats.handed++
}

// ack checks an Acknowledge: ErrNotFound only for a message older than
// the received log (transcript.MaxLog contents; the margin allows for
// receives the kills kept from printing).
func (p *crashPair) ack(dev, idHex, result string, lines []string) {
	raw, err := hex.DecodeString(idHex)
	m := p.ids[sealpost.MessageID(raw)]
	if err != nil || m == nil || m.to != dev || !m.handed {
		p.fail(lines, "%s acknowledged %s, which it was never handed", dev, idHex)
	}
	switch since := p.consumed[dev] - m.consumedAt; {
	case result == "ok":
	case result == "notfound" && since >= transcript.MaxLog-p.unprinted:
		p.stats.oldAcks++
	default:
		p.fail(lines, "%s: Acknowledge(%s) = %s, %d contents after it", dev, idHex, result, since)
	}
}

// done records a printed Done: the relay may drop the envelope, and every
// later delivery of it must be ErrDuplicate.
func (p *crashPair) done(dev, idHex string, lines []string) {
	raw, err := hex.DecodeString(idHex)
	if err != nil || len(raw) != len(sealpost.MessageID{}) {
		p.fail(lines, "bad done line")
	}
	id := sealpost.MessageID(raw)
	for _, e := range p.order {
		if e.to == dev && e.handed && e.gotID == id {
			if !e.doneNext {
				p.fail(lines, "Done printed for a result the child did not mean to Done")
			}
			e.acked = true
			return
		}
	}
	p.fail(lines, "%s: Done for an id it was never handed", dev)
}

// finish checks a pair after its final run: every envelope committed (by
// its line or by Unsent) was handed, once as new, and Done, and left its
// sender's outbox; neither device reports a finding about the other (a
// gap or a drop is an envelope lost between its commit and the relay);
// and a message went each way after the last kill.
func (p *crashPair) finish() {
	p.t.Helper()
	for _, kb := range p.killedBatches {
		switch {
		case kb.fresh > 0:
			p.stats.batchKilledBefore++
		case kb.redelivered > 0:
			p.stats.batchKilledAfter++
		}
	}
	for _, dev := range []string{"alice", "bob"} {
		fs, ok := p.findings[dev]
		switch {
		case !ok:
			p.onFail(fmt.Sprintf("the final run printed no findings for %s", dev))
		case fs == "-":
		case strings.Contains(fs, transcript.Gap.String()+"/"), strings.Contains(fs, transcript.Drop.String()+"/"),
			strings.Contains(fs, transcript.Lost.String()+"/"):
			p.onFail(fmt.Sprintf("lost envelope: after everything was delivered, %s still reports %s about %s: a content it or its peer committed never reached the relay",
				dev, fs, peerOf(dev)))
		default:
			p.onFail(fmt.Sprintf("after everything was delivered, %s reports %s about %s", dev, fs, peerOf(dev)))
		}
	}
	for _, e := range p.order {
		if !e.handed || !e.acked || e.fresh > 1 || e.box != gone {
			p.onFail(fmt.Sprintf("envelope %d %s from %s (message %x, %q, sent in run %d, recovered from Unsent %t): handed %t, acked %t, handed as new %d times, outbox state %d",
				e.seq, e.key, e.from, e.id[:], e.body, e.sentRun, e.recovered, e.handed, e.acked, e.fresh, e.box))
		}
	}
	for _, dev := range []string{"alice", "bob"} {
		e := p.resumeSent[dev]
		if e == nil || !e.handed || e.fresh != 1 || !e.acked {
			p.onFail(fmt.Sprintf("the conversation did not resume: %s's message after the last kill did not arrive", dev))
		}
	}
}

// TestCrash is checklist item 34 (TESTING.md); see the file comment. One iteration is
// one SIGKILL: crash.iterations of them (200 by default, as in CI; 1,000
// for the long run), crashKillsPerPair on each pair of files, each pair
// ending with a run that is not killed and must finish the conversation.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	start := time.Now()
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -crash.seed=%d)", seed, seed)
	stats := &crashStats{killedIn: map[string]int{}}
	crashLoop(t, stats, seed, *crashIterations, *crashBudget, false, func(msg string) {
		t.Helper()
		t.Fatal(msg)
	})
	t.Logf("%d kills over %d pairs (up to %d envelopes each) and %d runs (%d ended before the kill) in %v; a child takes %v to start, the kill window was %v; killed in: %v",
		stats.kills, stats.pairs, stats.longestPair, stats.runs, stats.missed, time.Since(start).Round(time.Millisecond),
		stats.startEst.Round(time.Millisecond), stats.window.Round(time.Millisecond), stats.killedIn)
	t.Logf("envelopes returned: %d messages, %d receipts; handed %d (%d redelivered, %d after a commit the kill kept from printing)",
		stats.messages, stats.receipts, stats.handed, stats.redelivered, stats.commitBeforePrint)
	t.Logf("delivered again after Done: %d ErrDuplicate, %d ErrDecrypt past the replay record; ErrDuplicate after a Done the kill kept from printing: %d",
		stats.dupAfterDone, stats.oldReplays, stats.dupUnprinted)
	t.Logf("past the logs: %d receipts for messages the sender no longer holds, %d Acknowledge ErrNotFound; %d gap/drop findings on the way, none left at the end",
		stats.oldReceipts, stats.oldAcks, stats.gaps)
	t.Logf("outbox: %d envelopes first seen in Unsent (their line cut by a kill), %d listed again (a kill before Sent returned)",
		stats.recovered, stats.reposted)
	t.Logf("ReceiveBatch: %d calls returned, %d envelopes (%d second copies); of the kills during one, %d came before its Apply committed (an envelope came back new), %d after (Redelivered)",
		stats.batches, stats.batchEnvs, stats.copies, stats.batchKilledBefore, stats.batchKilledAfter)
	if stats.kills == 0 {
		t.Fatal("no kill")
	}
}

// crashDetected unwinds TestCrashCatchesLostWrites from a failed check.
type crashDetected struct{ msg string }

// TestCrashCatchesLostWrites runs the harness on laggingStore, which
// acknowledges each Apply before it is durable, and passes only if the
// checks catch that within crashSelfTestKills kills: the harness can fail.
func TestCrashCatchesLostWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	const crashSelfTestKills = 40
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d", seed)
	var caught string
	stats := &crashStats{killedIn: map[string]int{}}
	func() {
		defer func() {
			if r := recover(); r != nil {
				d, ok := r.(crashDetected)
				if !ok {
					panic(r)
				}
				caught = d.msg
			}
		}()
		crashLoop(t, stats, seed, crashSelfTestKills, 0, true, func(msg string) { panic(crashDetected{msg}) })
	}()
	if caught == "" {
		t.Fatalf("%d kills on a store that loses its last write, and no check failed", stats.kills)
	}
	t.Logf("caught after %d kills: %s", stats.kills, strings.SplitN(caught, "\n", 2)[0])
}

// crashLoop runs pairs until iterations kills (or budget), counting in
// stats. Every random choice comes from one generator seeded with seed,
// used only on this goroutine.
func crashLoop(t *testing.T, stats *crashStats, seed uint64, iterations int, budget time.Duration, lossy bool, onFail func(string)) {
	t.Helper()
	start := time.Now()
	rng := rand.New(rand.NewPCG(seed, seed>>32))
	for stats.kills < iterations {
		if budget > 0 && time.Since(start) > budget {
			t.Logf("stopping after %d kills: over the %v budget", stats.kills, budget)
			break
		}
		p := newCrashPair(t, stats)
		p.lossy, p.onFail = lossy, onFail
		for n := 0; n < crashKillsPerPair && stats.kills < iterations; {
			if p.runChild(rng, false) {
				n++
			}
			if stats.runs > 3*iterations+10 {
				t.Fatalf("%d runs for %d kills: the kills do not land", stats.runs, stats.kills)
			}
		}
		p.runChild(rng, true)
		p.finish()
		stats.longestPair = max(stats.longestPair, len(p.order))
	}
}
