package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/examples/relay/client"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/transcript"
)

// app is one running chat client.
type app struct {
	dev        *sealpost.Device
	self       sealpost.Address
	relay      *client.Client
	blobs      attach.BlobStore // the relay's blob store, for /send and /save
	maxFile    int64            // the largest file /send uploads
	relayURL   string
	owner      *client.Key // the mailbox's owner key at the relay
	upload     *client.Key // the key the relay checks bundle uploads with
	hist       *history
	out        *printer
	kick       chan struct{} // the device's outbox has something
	flushEvery time.Duration
	current    string // the contact bare text goes to
	now        func() time.Time
	link       bool   // this device waits to be linked: it makes no account
	deviceName string // this device's name on the account's list
	// pending is the link code /approve showed the short form of, until
	// /approve yes (pendingShare: with the account key); only the
	// command loop touches them.
	pending      *keys.LinkCode
	pendingShare bool
	// sealing is held from sealing a message (Send) until it is in the
	// history, so that the outbox loop finds it there when it posts it.
	// The Device's outbox (Unsent) hands envelopes back in the order it
	// numbered them, so a receipt never overtakes a message.
	sealing sync.Mutex
	// boxes is the mailboxes read (mailboxes.go); each reader hands its
	// bursts to the receive loop on bursts.
	boxes  mailboxSet
	bursts chan burst
	// settling is the gap and drop findings shown only if still open
	// after findingSettle (mailboxes.go).
	settleMu sync.Mutex
	settling []settling
}

// printer serialises output lines from the workers and the prompt. While
// a transfer's progress line is on screen (bar), a line printed meanwhile
// replaces it and the progress line is drawn again below.
type printer struct {
	mu   sync.Mutex
	w    io.Writer
	line string // the progress line on screen, without its newline, or ""
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearBar()
	fmt.Fprintf(p.w, format+"\n", args...)
	fmt.Fprint(p.w, p.line)
}

func (a *app) run(ctx context.Context, in io.Reader, oneTime int) error {
	if err := a.register(ctx); err != nil {
		return err
	}
	if a.hist.meta("published") == "" {
		if err := a.publish(ctx, oneTime); err != nil {
			return fmt.Errorf("publishing the bundle: %w", err)
		}
	}
	if err := a.setupAccount(ctx); err != nil {
		return err
	}
	a.out.printf("ready: %s, mailbox %x (type /help)", a.self, a.dev.Mailbox()[:4])
	ctx, cancel := context.WithCancel(ctx)
	a.boxes.readers, a.boxes.refused, a.boxes.down = map[string]*mailboxReader{}, map[string]bool{}, map[string]bool{}
	a.bursts = make(chan burst)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		a.stopReaders() // no sync starts one now: the outbox loop ended
	}()
	// Every mailbox the Device lists is read; one not registered yet is
	// tried again by the outbox loop before it posts.
	a.forgetExpired()
	a.syncMailboxes(ctx)
	wg.Go(func() { a.receiveLoop(ctx) })
	wg.Go(func() { a.outboxLoop(ctx) })
	wg.Go(func() { a.flushLoop(ctx) })

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			if quit := a.command(ctx, strings.TrimSpace(line)); quit {
				return nil
			}
		}
	}
}

// register loads the relay keys from the data file (creating them on the
// first start) and, on the first start, registers the mailbox's owner key
// before the bundle that names the mailbox is published. A mailbox
// registered with another key (409) cannot be read by this device: that is
// an error.
func (a *app) register(ctx context.Context) error {
	var err error
	name := "relay.owner." + hex.EncodeToString(a.dev.Mailbox())
	if a.owner, err = a.hist.relayKey(name); err != nil {
		return err
	}
	if a.upload, err = a.hist.relayKey("relay.upload"); err != nil {
		return err
	}
	if a.hist.meta("registered."+name) != "" {
		return nil
	}
	return a.registerNow(ctx)
}

// registerNow registers the mailbox's owner key at the relay (again, if
// it was: the relay accepts the same key) and notes that it did.
func (a *app) registerNow(ctx context.Context) error {
	return a.registerMailbox(ctx, a.dev.Mailbox(), a.owner, true)
}

// publish uploads a fresh bundle: one blob per one-time prekey and the
// last resort.
func (a *app) publish(ctx context.Context, oneTime int) error {
	b, err := a.dev.NewBundle(ctx, oneTime)
	if err != nil {
		return err
	}
	var blobs [][]byte
	for _, part := range b.Split() {
		raw, err := part.MarshalBinary()
		if err != nil {
			return err
		}
		blobs = append(blobs, raw)
	}
	if err := a.relay.PutBundle(ctx, a.upload, a.self.User, a.self.Device, blobs[:len(blobs)-1], blobs[len(blobs)-1]); err != nil {
		return err
	}
	return a.hist.setMeta("published", time.Now().UTC().Format(time.RFC3339))
}

const help = `commands:
  /add <user> [device]   fetch the contact's bundle from the relay and start a session
  /msg <user> <text>     send a message (plain text goes to the last contact used)
  /to <user>             send plain text to user
  /send <user> <file>    encrypt the file, upload it to the relay (the relay sees only
                         a padded blob) and send user a message that carries it
  /save <n> <path>       download file n (numbered in /history), check and decrypt it
                         to path, or into path if it is a folder; nothing is left on failure
  /read [user]           send read receipts for everything received from user
                         (default: the contact you talk to, or every contact)
  /history [user]        show messages with ticks: ✓ sent, ✓✓ delivered, ✓✓✓ read
  /safety <user>         show the safety number to compare with the contact (and, when both
                         have accounts, the account's, which linking a device leaves as it is)
  /findings [user]       list what the transcript noticed: gaps, drops, forks, identity changes
  /contacts              list contacts
  /publish [n]           upload a fresh bundle with n one-time prekeys (default 10)
  /rotate                give every conversation a new reply mailbox (the relay cannot link
                         the old ones to the new); the old ones are still read for a while
devices (one account, several devices; device 1 makes the account on its first start,
a device started with -device N (N ≠ 1) or -link is linked to it instead):
  /devices               list your account's devices: id, name, and which one is this one
  /link [name]           on a new device: show a link code and its short form, and wait
                         until a device of yours approves it
  /approve [-key] <code> on a device holding the account key: show the code's short form
                         to compare with the new device's; -key also gives it the account key
  /approve yes|no        link the device (or not) once both show the same short form
  /remove <id>           remove a device from your account (it gets nothing from then on)
A message to a user with an account goes to each of their devices and, as a copy, to
your other devices ("you (on laptop) → bob: ..."); to a user without one, as before.
  /quit`

// command runs one input line; it returns true on /quit.
func (a *app) command(ctx context.Context, line string) bool {
	if line == "" {
		return false
	}
	if !strings.HasPrefix(line, "/") {
		if a.current == "" {
			a.out.printf("! no contact chosen: /to <user> or /msg <user> <text>")
			return false
		}
		a.send(ctx, a.current, line)
		return false
	}
	cmd, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	args := strings.Fields(rest)
	arg := func(i string) string {
		if len(args) > 0 {
			return args[0]
		}
		return i
	}
	switch cmd {
	case "/quit", "/exit":
		return true
	case "/help":
		a.out.printf("%s", help)
	case "/add":
		a.add(ctx, args)
	case "/msg":
		user, text, ok := strings.Cut(rest, " ")
		if !ok || strings.TrimSpace(text) == "" {
			a.out.printf("! usage: /msg <user> <text>")
			return false
		}
		a.current = user
		a.send(ctx, user, strings.TrimSpace(text))
	case "/send":
		user, path, ok := strings.Cut(rest, " ")
		if !ok || strings.TrimSpace(path) == "" {
			a.out.printf("! usage: /send <user> <file>")
			return false
		}
		a.current = user
		a.sendFile(ctx, user, strings.TrimSpace(path))
	case "/save":
		n, path, _ := strings.Cut(rest, " ")
		a.saveFile(ctx, n, strings.TrimSpace(path))
	case "/to":
		if _, ok := a.hist.contact(arg("")); !ok && (arg("") == "" || !a.hasList(ctx, arg(""))) {
			a.out.printf("! unknown contact %q: /add it first", arg(""))
			return false
		}
		a.current = arg("")
		a.out.printf("talking to %s", a.current)
	case "/read":
		a.readCommand(ctx, arg(a.current))
	case "/history":
		a.showHistory(arg(""))
	case "/safety":
		if arg(a.current) == "" {
			a.out.printf("! usage: /safety <user>")
			return false
		}
		a.safety(ctx, arg(a.current))
	case "/findings":
		a.findings(arg(""))
	case "/contacts":
		for _, c := range a.hist.contacts() {
			a.out.printf("  %s", c)
		}
	case "/devices":
		a.devicesCommand(ctx)
	case "/link":
		a.linkCommand(ctx, args)
	case "/approve":
		a.approveCommand(ctx, args)
	case "/remove":
		a.removeCommand(ctx, args)
	case "/rotate":
		a.rotateCommand(ctx)
	case "/publish":
		n := 10
		if len(args) > 0 {
			if v, err := strconv.Atoi(args[0]); err == nil {
				n = v
			}
		}
		if err := a.publish(ctx, n); err != nil {
			a.out.printf("! publish: %v", err)
		} else {
			a.out.printf("published a bundle with %d one-time prekeys", n)
		}
	default:
		a.out.printf("! unknown command %s (type /help)", cmd)
	}
	return false
}

func (a *app) add(ctx context.Context, args []string) {
	if len(args) == 0 {
		a.out.printf("! usage: /add <user> [device]")
		return
	}
	peer := sealpost.Address{User: args[0], Device: 1}
	if len(args) > 1 {
		d, err := strconv.ParseUint(args[1], 10, 32)
		if err != nil {
			a.out.printf("! bad device %q", args[1])
			return
		}
		peer.Device = uint32(d)
	}
	blob, oneTime, err := a.relay.FetchBundle(ctx, peer.User, peer.Device)
	if client.IsStatus(err, http.StatusNotFound) {
		a.out.printf("! %s has published no bundle", peer)
		return
	}
	if err != nil {
		a.out.printf("! fetching %s's bundle: %v", peer, err)
		return
	}
	b, err := keys.ParseBundle(blob)
	if err == nil {
		err = a.dev.StartSession(ctx, peer, b)
	}
	if err != nil {
		a.out.printf("! %s's bundle: %v", peer, err)
		return
	}
	if err := a.hist.addContact(peer); err != nil {
		a.out.printf("! saving the contact: %v", err)
		return
	}
	a.current = peer.User
	kind := "last-resort"
	if oneTime {
		kind = "one-time"
	}
	a.out.printf("added %s (session from a %s bundle); compare /safety %s with them", peer, kind, peer.User)
}

func (a *app) send(ctx context.Context, user, text string) {
	a.seal(ctx, user, text, nil)
}

func (a *app) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// readCommand is /read: for user, or, when no contact is named or chosen
// (as after a restart), for every contact with unread messages.
func (a *app) readCommand(ctx context.Context, user string) {
	if user != "" {
		if n, ok := a.read(ctx, user); ok && n == 0 {
			a.out.printf("nothing unread from %s", user)
		}
		return
	}
	total := 0
	for _, c := range a.hist.contacts() {
		n, _ := a.read(ctx, c.User)
		total += n
	}
	if total == 0 {
		a.out.printf("nothing unread")
	}
}

// read sends read receipts for every unread message from user and returns
// how many it marked; ok is false when it printed an error.
func (a *app) read(ctx context.Context, user string) (n int, ok bool) {
	if _, ok := a.hist.contact(user); !ok {
		a.out.printf("! unknown contact %q", user)
		return 0, false
	}
	byDevice, err := a.hist.markRead(user)
	if err != nil {
		a.out.printf("! %v", err)
		return 0, false
	}
	// Each device of user's hears of the messages it sent, and our other
	// devices hear that they were read (read-sync; without a session with
	// one of them, only the receipts go).
	for device, ids := range byDevice {
		from := sealpost.Address{User: user, Device: device}
		_, err := a.dev.MarkRead(ctx, from, ids...)
		if errors.Is(err, sealpost.ErrNoSession) {
			err = a.dev.Acknowledge(ctx, from, sealpost.KindRead, ids...)
		}
		if err != nil {
			a.out.printf("! read receipts: %v", err)
			return 0, false
		}
		n += len(ids)
	}
	a.wake()
	if n == 0 {
		return 0, true
	}
	a.out.printf("marked %d message(s) from %s read", n, user)
	return n, true
}

// ticks renders a message status.
func ticks(status string) string {
	switch status {
	case statusQueued:
		return "· queued"
	case statusSent:
		return "✓ sent"
	case statusDelivered:
		return "✓✓ delivered"
	case statusRead:
		return "✓✓✓ read"
	}
	return status
}

func (a *app) showHistory(user string) {
	msgs := a.hist.messages(user)
	if len(msgs) == 0 {
		a.out.printf("no messages")
	}
	for _, m := range msgs {
		if m.Out {
			a.out.printf("  %s  me → %s: %s  [%s]", m.Time.Format("15:04:05"), m.Peer, m.text(), ticks(m.Status))
		} else {
			a.out.printf("  %s  %s: %s  [%s]", m.Time.Format("15:04:05"), m.Peer, m.text(), m.Status)
		}
	}
}

func (a *app) safety(ctx context.Context, user string) {
	peer, ok := a.hist.contact(user)
	if !ok {
		a.out.printf("! unknown contact %q", user)
		return
	}
	sn, err := a.dev.SafetyNumber(peer)
	if err != nil {
		a.out.printf("! %v", err)
		return
	}
	a.out.printf("safety number with %s: %s", peer, sn)
	// Over the account keys: the same on every device of both accounts,
	// and it stays when a device is linked or removed.
	if an, err := a.dev.AccountSafetyNumber(ctx, user); err == nil {
		a.out.printf("account safety number with %s: %s (the same on all your devices and theirs)", user, an)
	}
}

func (a *app) findings(user string) {
	var peers []sealpost.Address
	if user != "" {
		p, ok := a.hist.contact(user)
		if !ok {
			a.out.printf("! unknown contact %q", user)
			return
		}
		peers = []sealpost.Address{p}
	} else {
		peers = a.hist.contacts()
	}
	n := 0
	for _, p := range peers {
		for _, f := range a.dev.Findings(p) {
			a.out.printf("  %s: %v", p, f)
			n++
		}
	}
	if n == 0 {
		a.out.printf("no findings")
	}
}

// maxReceiveBatch bounds the envelopes the chat receives in one
// ReceiveBatch.
const maxReceiveBatch = 256

// handleAll receives the envelopes of a delivery burst: one alone with
// Receive, more with one ReceiveBatch (a single store commit). If the
// batch's commit fails, nothing was received and each is tried alone.
func (a *app) handleAll(ctx context.Context, batch []client.Delivery) {
	if len(batch) == 1 {
		a.handle(ctx, batch[0].Envelope)
		return
	}
	envs := make([][]byte, len(batch))
	for i, d := range batch {
		envs[i] = d.Envelope
	}
	res, err := a.dev.ReceiveBatch(ctx, envs)
	if err != nil {
		for _, e := range envs {
			a.handle(ctx, e)
		}
		return
	}
	var done []sealpost.MessageID
	for _, r := range res {
		if a.show(ctx, r.Incoming, r.Err) {
			done = append(done, r.Incoming.ID)
		}
	}
	if err := a.dev.Done(ctx, done...); err != nil { // one commit for the batch too
		a.out.printf("! %v", err)
	}
}

// handle receives one envelope: the history first, then Done, then the
// caller acknowledges it to the relay.
func (a *app) handle(ctx context.Context, env []byte) {
	in, err := a.dev.Receive(ctx, env)
	if a.show(ctx, in, err) {
		if err := a.dev.Done(ctx, in.ID); err != nil {
			a.out.printf("! %v", err)
		}
	}
}

// show records and prints what one envelope held, and reports whether it
// is saved in the history, so that the caller calls Done.
func (a *app) show(ctx context.Context, in *sealpost.Incoming, err error) bool {
	if errors.Is(err, sealpost.ErrDuplicate) {
		return false
	}
	if err != nil {
		a.out.printf("! an envelope that does not open: %v", err)
		return false
	}
	a.showAccount(ctx, in)
	if in.Kind == sealpost.KindRead && in.Sync {
		// Our other device read these: they are read here too.
		n, err := a.hist.markReadIDs(in.SyncFor, in.Read)
		if err != nil {
			a.out.printf("! %v", err)
			return false
		}
		if n > 0 {
			a.out.printf("%d message(s) from %s read on %s", n, in.SyncFor, a.ownDeviceName(ctx, in.From.Device))
		}
		return true
	}
	if in.Kind == sealpost.KindMessage && in.Sync && !a.hist.has(in.ID) {
		// A copy of what our other device sent.
		m, err := a.hist.addSync(in, time.Now())
		if err != nil {
			a.out.printf("! saving a message: %v", err)
			return false
		}
		if _, known := a.hist.contact(in.SyncFor); !known {
			if err := a.hist.addContact(sealpost.Address{User: in.SyncFor, Device: 1}); err != nil {
				a.out.printf("! %v", err)
			}
		}
		a.out.printf("%s you (on %s) → %s: %s", a.now().Format("15:04:05"), a.ownDeviceName(ctx, in.From.Device), in.SyncFor, m.text())
	} else if in.Kind == sealpost.KindMessage && !a.hist.has(in.ID) {
		if _, known := a.hist.contact(in.From.User); !known {
			if err := a.hist.addContact(in.From); err != nil {
				a.out.printf("! %v", err)
				return false
			}
			a.out.printf("new contact %s; compare /safety %s with them", in.From, in.From.User)
		}
		m, err := a.hist.addIncoming(in, time.Now())
		if err != nil {
			a.out.printf("! saving a message: %v", err)
			return false // not Done: the relay or the device gives it again
		}
		at := a.now().Format("15:04:05")
		if m.Body != "" || len(m.Files) == 0 {
			a.out.printf("%s <%s> %s", at, in.From.User, in.Body)
		}
		for _, f := range m.Files {
			a.out.printf("%s <%s> %s: /save %d <path>", at, in.From.User, f, f.N)
		}
	}
	changed, err := a.hist.receipts(in.From, in.Delivered, in.Read)
	if err != nil {
		a.out.printf("! %v", err)
		return false
	}
	for _, m := range changed {
		a.out.printf("%s by %s: %q", ticks(m.Status), m.Peer, m.text())
	}
	for _, f := range in.Findings {
		if f.Kind == transcript.Gap || f.Kind == transcript.Drop {
			a.settleLater(in.From, f) // it may close by itself
			continue
		}
		a.out.printf("! transcript finding with %s: %v", in.From, f)
	}
	return true
}

// outboxLoop posts the Device's outbox (Unsent: every envelope Send and
// Flush made, also before a crash) in order, and reports each one the
// relay took as Sent, retrying what the relay could not take yet.
func (a *app) outboxLoop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		a.sealing.Lock() // a message just sent is in the history first
		outs, err := a.dev.Unsent(ctx)
		a.sealing.Unlock()
		if err != nil && ctx.Err() == nil {
			a.out.printf("! reading the outbox: %v", err)
		}
		// The envelopes may name reply mailboxes made when they were
		// sealed: those are registered (and read) before any is posted.
		if err := a.syncMailboxes(ctx); err != nil && len(outs) > 0 {
			if ctx.Err() == nil {
				sleep(ctx, backoff)
				backoff = min(2*backoff, 5*time.Second)
			}
			continue
		}
		if len(outs) == 0 {
			select {
			case <-ctx.Done():
			case <-a.kick:
			case <-time.After(5 * time.Second):
			}
			continue
		}
		for len(outs) > 0 {
			// A fan-out (SendUser: one message id, an envelope per
			// device) goes as one batch.
			n := 1
			for n < len(outs) && n < maxPostBatch && outs[n].ID == outs[0].ID && outs[0].ID != (sealpost.MessageID{}) {
				n++
			}
			group := outs[:n]
			outs = outs[n:]
			if !a.post(ctx, group...) {
				if ctx.Err() == nil {
					sleep(ctx, backoff)
					backoff = min(2*backoff, 5*time.Second)
				}
				break
			}
			backoff = 100 * time.Millisecond
		}
	}
}

// maxPostBatch is the most envelopes one PostBatch carries (the relay's
// server.MaxBatchEnvelopes).
const maxPostBatch = 64

// post hands envelopes of one message to the relay (one: Post; more, a
// fan-out: PostBatch) and reports whether the loop may go on to the next:
// true once the relay took them or refused them for good. A batch the
// relay stored only in part is posted again whole: the relay drops the
// repeats.
func (a *app) post(ctx context.Context, group ...*sealpost.Outgoing) bool {
	var err error
	if len(group) == 1 {
		err = a.relay.Post(ctx, group[0].Envelope)
	} else {
		envs := make([][]byte, len(group))
		for i, o := range group {
			envs[i] = o.Envelope
		}
		err = a.relay.PostBatch(ctx, envs)
	}
	var se *client.StatusError
	var be *client.BatchError
	status := statusSent
	switch {
	case err == nil:
	case errors.As(err, &be):
		return false // some not stored: again later
	case errors.As(err, &se) && (se.Code == http.StatusBadRequest || se.Code == http.StatusRequestEntityTooLarge):
		a.out.printf("! the relay refused an envelope: %v", err)
		status = statusFailed
	default:
		return false
	}
	if err := a.dev.Sent(ctx, group...); err != nil {
		a.out.printf("! %v", err) // posted again later: the peer drops the copy
		return false
	}
	m, err := a.hist.posted(group[0].ID, status)
	if err != nil {
		a.out.printf("! %v", err)
	} else if m != nil && status == statusSent {
		a.out.printf("%s to %s: %q", ticks(m.Status), m.Peer, m.text())
	}
	return true
}

// flushLoop makes the envelopes of receipts whose random delay has passed;
// the outbox loop posts them.
func (a *app) flushLoop(ctx context.Context) {
	t := time.NewTicker(a.flushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.showSettled()
		outs, err := a.dev.Flush(ctx) // the receipts wait in the device's outbox
		if len(outs) > 0 {
			a.wake()
		}
		if err != nil && ctx.Err() == nil {
			a.out.printf("! flush: %v", err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
