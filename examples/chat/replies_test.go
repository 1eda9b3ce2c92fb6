package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/examples/boltstore"
	"github.com/sealpost/sealpost/examples/relay/server"
)

// relayLog records, in order, what a relay saw of mailboxes: each owner
// registration (before the relay answers it) and the mailbox of each
// envelope it stored (after it answered 202), from POST /v1/envelopes and
// /v1/envelopes/batch, read with envelope.Parse and envelope.Next as the
// relay reads them.
type relayLog struct {
	mu     sync.Mutex
	events []relayEvent
	drop   int // answer this many envelope posts 202 and store nothing
	busy   int // answer this many mailbox reads 429
}

type relayEvent struct {
	register bool   // an owner registration
	deleted  bool   // a mailbox emptied by its owner; neither: a stored envelope
	mailbox  string // hex
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (l *relayLog) add(e relayEvent) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// wrap records what h sees; the mailbox WebSockets pass untouched.
func (l *relayLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case r.Method == http.MethodPost && (p == "/v1/envelopes" || p == "/v1/envelopes/batch"):
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			l.mu.Lock()
			lose := l.drop > 0
			if lose {
				l.drop--
			}
			l.mu.Unlock()
			if lose {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			sw := &statusWriter{ResponseWriter: w}
			h.ServeHTTP(sw, r)
			if sw.code != http.StatusAccepted {
				return
			}
			for rest := body; len(rest) > 0; {
				hd, _, next, err := envelope.Next(rest)
				if err != nil {
					panic(fmt.Sprintf("the relay stored what envelope.Next refuses: %v", err))
				}
				l.add(relayEvent{mailbox: hex.EncodeToString(hd.Mailbox)})
				rest = next
			}
		case r.Method == http.MethodPut && strings.HasPrefix(p, "/v1/mailboxes/") && strings.HasSuffix(p, "/owner"):
			l.add(relayEvent{register: true, mailbox: strings.TrimSuffix(strings.TrimPrefix(p, "/v1/mailboxes/"), "/owner")})
			h.ServeHTTP(w, r)
		case r.Method == http.MethodGet && strings.HasPrefix(p, "/v1/mailboxes/"):
			l.mu.Lock()
			busy := l.busy > 0
			if busy {
				l.busy--
			}
			l.mu.Unlock()
			if busy {
				w.Header().Set("Retry-After", "1")
				http.Error(w, `{"error": "rate limited"}`, http.StatusTooManyRequests)
				return
			}
			h.ServeHTTP(w, r)
		case r.Method == http.MethodDelete && strings.HasPrefix(p, "/v1/mailboxes/"):
			l.add(relayEvent{deleted: true, mailbox: strings.TrimPrefix(p, "/v1/mailboxes/")})
			h.ServeHTTP(w, r)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

func (l *relayLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

func (l *relayLog) snapshot() []relayEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]relayEvent(nil), l.events...)
}

// published returns the one registered mailbox starting with prefix (the
// 4 bytes a chat's ready line shows of its published mailbox).
func (l *relayLog) published(t *testing.T, prefix string) string {
	t.Helper()
	var found []string
	seen := map[string]bool{}
	for _, e := range l.snapshot() {
		if e.register && strings.HasPrefix(e.mailbox, prefix) && !seen[e.mailbox] {
			seen[e.mailbox] = true
			found = append(found, e.mailbox)
		}
	}
	if len(found) != 1 {
		t.Fatalf("registered mailboxes starting %s: %q", prefix, found)
	}
	return found[0]
}

// newLoggedRelay starts a relay whose handler rl records.
func newLoggedRelay(t *testing.T) (*httptest.Server, *relayLog) {
	t.Helper()
	rl := &relayLog{}
	relay, err := server.New(context.Background(), server.Config{DataDir: t.TempDir(), Rate: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(rl.wrap(relay.Handler()))
	t.Cleanup(func() { hs.Close(); relay.Close() })
	return hs, rl
}

// publishedOf maps the chats' published mailboxes to their names.
func (l *relayLog) publishedOf(t *testing.T, chats ...*term) map[string]string {
	t.Helper()
	pub := map[string]string{}
	for _, c := range chats {
		m := readyMailboxRE.FindStringSubmatch(c.expectEver("ready: "))
		if m == nil {
			t.Fatalf("%s: no mailbox on the ready line", c.name)
		}
		pub[l.published(t, m[1])] = c.name
	}
	return pub
}

var readyMailboxRE = regexp.MustCompile(`^ready: \S+, mailbox ([0-9a-f]{8}) `)

// countLines counts c's output lines containing s.
func (c *term) countLines(s string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// TestReplyMailboxesOnRelay: two chats on a real relay exchange 21 and 20
// messages. What the relay stored shows reply mailboxes at work: Alice's
// published mailbox gets nothing, Bob's only Alice's first contact (before
// his answer reached her), and every later envelope goes to a mailbox of
// a conversation, one per side, each registered with the relay before the
// first envelope to it. After Alice's /rotate, messages keep flowing both
// ways and none is lost or shown twice: Bob's messages sent before he
// hears of the rotation go to her old mailbox, which she still reads, and
// once he has her next content they go to her new one, registered right
// at the /rotate. Restarted, Bob reads his reply mailbox again and gets
// what Alice sent meanwhile as a backlog (his reads refused at first
// over the relay's rate limit are tried again, not reported as a loss).
func TestReplyMailboxesOnRelay(t *testing.T) {
	hs, rl := newLoggedRelay(t)
	dir := t.TempDir()
	alice := startChat(t, hs.URL, "alice", filepath.Join(dir, "alice.db"))
	bob := startChat(t, hs.URL, "bob", filepath.Join(dir, "bob.db"))
	pub := rl.publishedOf(t, alice, bob)

	alice.cmd("/add bob")
	alice.expect("added bob.1")
	alice.cmd("/msg bob a>b 00")
	bob.expectEver("<alice> a>b 00")
	alice.expectEver(`✓✓ delivered by bob: "a>b 00"`)
	// Both sides know the other's reply mailbox now.
	firstContact := rl.len()

	const n = 20
	for i := 1; i <= n; i++ {
		alice.cmd(fmt.Sprintf("/msg bob a>b %02d", i))
		bob.cmd(fmt.Sprintf("/msg alice b>a %02d", i))
	}
	for i := 1; i <= n; i++ {
		bob.expectEver(fmt.Sprintf("<alice> a>b %02d", i))
		alice.expectEver(fmt.Sprintf("<bob> b>a %02d", i))
	}
	alice.expectEver(fmt.Sprintf(`✓✓ delivered by bob: "a>b %02d"`, n))
	bob.expectEver(fmt.Sprintf(`✓✓ delivered by alice: "b>a %02d"`, n))

	// checkLog checks every stored envelope: none to a published mailbox
	// after the first contact, and each to a mailbox registered before.
	// It returns the mailboxes envelopes went to from index from on.
	checkLog := func(from int) map[string]int {
		t.Helper()
		registered := map[string]bool{}
		used := map[string]int{}
		for i, e := range rl.snapshot() {
			switch {
			case e.deleted:
			case e.register:
				registered[e.mailbox] = true
			case !registered[e.mailbox]:
				t.Fatalf("event %d: an envelope to mailbox %s, which was not registered yet", i, e.mailbox)
			case pub[e.mailbox] != "" && (i >= firstContact || pub[e.mailbox] == "alice"):
				t.Fatalf("event %d (first contact done at %d): an envelope to %s's published mailbox", i, firstContact, pub[e.mailbox])
			case i >= from:
				used[e.mailbox]++
			}
		}
		return used
	}
	before := checkLog(firstContact)
	if len(before) != 2 {
		t.Fatalf("after the first contact envelopes went to %d mailboxes, want 2 (one reply mailbox each): %v", len(before), before)
	}
	toBobPublished := 0
	for _, e := range rl.snapshot()[:firstContact] {
		if !e.register && !e.deleted && pub[e.mailbox] == "bob" {
			toBobPublished++
		}
	}
	if toBobPublished == 0 {
		t.Fatal("Alice's first contact did not go to Bob's published mailbox")
	}

	// Alice rotates; Bob, not knowing yet, sends to her old mailbox.
	rotated := rl.len()
	alice.cmd("/rotate")
	alice.expect("rotated the reply mailboxes: 1 new, 1 replaced one(s) still read for 14 days")
	var fresh []string
	for _, e := range rl.snapshot()[rotated:] {
		if e.register {
			fresh = append(fresh, e.mailbox)
		}
	}
	if len(fresh) != 1 || before[fresh[0]] != 0 {
		t.Fatalf("/rotate registered %q, want one new mailbox", fresh)
	}
	for i := range 5 {
		bob.cmd(fmt.Sprintf("/msg alice in flight %02d", i))
	}
	for i := range 5 {
		alice.cmd(fmt.Sprintf("/msg bob after rotate %02d", i))
	}
	for i := range 5 {
		alice.expectEver(fmt.Sprintf("<bob> in flight %02d", i))
		bob.expectEver(fmt.Sprintf("<alice> after rotate %02d", i))
	}
	// Bob holds Alice's new mailbox now: his next envelopes go there.
	switched := rl.len()
	for i := range 5 {
		bob.cmd(fmt.Sprintf("/msg alice to the new one %02d", i))
		alice.cmd(fmt.Sprintf("/msg bob still flowing %02d", i))
	}
	for i := range 5 {
		alice.expectEver(fmt.Sprintf("<bob> to the new one %02d", i))
		bob.expectEver(fmt.Sprintf("<alice> still flowing %02d", i))
	}
	bob.expectEver(`✓✓ delivered by alice: "to the new one 04"`)
	alice.expectEver(`✓✓ delivered by bob: "still flowing 04"`)

	// Bob's first answer (a delivery receipt) went to Alice's first
	// reply mailbox: the first envelope to a mailbox not published.
	var aliceOld string
	for _, e := range rl.snapshot() {
		if !e.register && !e.deleted && pub[e.mailbox] == "" {
			aliceOld = e.mailbox
			break
		}
	}
	sinceRotate := checkLog(rotated)
	if sinceRotate[aliceOld] == 0 {
		t.Fatalf("nothing went to Alice's replaced mailbox after /rotate (Bob's in-flight messages): %v", sinceRotate)
	}
	if sinceRotate[fresh[0]] == 0 {
		t.Fatalf("nothing went to Alice's new mailbox: %v", sinceRotate)
	}
	afterSwitch := checkLog(switched)
	if afterSwitch[aliceOld] != 0 || afterSwitch[fresh[0]] == 0 || len(afterSwitch) != 2 {
		t.Fatalf("after Bob switched, envelopes went to %v; want Bob's mailbox and Alice's new one %s only (not her old one %s)", afterSwitch, fresh[0], aliceOld)
	}

	// Nothing lost, nothing twice (Bob's terminal so far).
	for _, c := range []struct {
		t    *term
		line string
		want int
	}{{bob, "<alice> a>b ", n + 1}, {alice, "<bob> b>a ", n}, {alice, "<bob> in flight ", 5},
		{bob, "<alice> after rotate ", 5}, {alice, "<bob> to the new one ", 5}, {bob, "<alice> still flowing ", 5}} {
		if got := c.t.countLines(c.line); got != c.want {
			t.Errorf("%s shows %d lines %q, want %d", c.t.name, got, c.line, c.want)
		}
	}

	// Bob restarts; what Alice sent meanwhile waits in his reply mailbox,
	// which he reads again (registered already) and receives as a backlog.
	bob.quit()
	offline := rl.len()
	for i := range 10 {
		alice.cmd(fmt.Sprintf("/msg bob while away %02d", i))
		alice.expect(fmt.Sprintf(`✓ sent to bob: "while away %02d"`, i))
	}
	// His mailbox reads opening at once meet the relay's rate limit: he
	// tries again, and does not call that a lost relay.
	rl.mu.Lock()
	rl.busy = 3
	rl.mu.Unlock()
	bob = startChat(t, hs.URL, "bob", filepath.Join(dir, "bob.db"))
	for i := range 10 {
		bob.expectEver(fmt.Sprintf("<alice> while away %02d", i))
	}
	alice.expectEver(`✓✓ delivered by bob: "while away 09"`)
	bob.cmd("/msg alice back again")
	alice.expectEver("<bob> back again")
	whileAway := checkLog(offline)
	if len(whileAway) != 2 || whileAway[aliceOld] != 0 || whileAway[fresh[0]] == 0 {
		t.Fatalf("around Bob's restart envelopes went to %v", whileAway)
	}
	if got := bob.countLines("<alice> while away "); got != 10 {
		t.Errorf("Bob shows %d lines of the backlog, want 10", got)
	}
	rl.mu.Lock()
	busy := rl.busy
	rl.mu.Unlock()
	if busy != 0 || bob.countLines("relay connection lost") != 0 {
		t.Errorf("%d reads not refused yet; Bob printed %d losses", busy, bob.countLines("relay connection lost"))
	}

	for _, c := range []*term{alice, bob} {
		c.cmd("/findings")
		c.expect("no findings")
		// A gap the reordering opened closed at once: not shown.
		if n := c.countLines("transcript finding"); n > 0 {
			t.Errorf("%s showed %d transcript findings", c.name, n)
		}
	}
	alice.quit()
	bob.quit()
}

// testClock is time.Now moved on by the test.
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// TestReplyMailboxExpiry: once a replaced reply mailbox's grace period
// ends (the chats' clock moved on), the chat stops reading it and has the
// relay drop what waits there, and the conversation goes on over the
// mailboxes that replaced it (both sides' reply mailboxes are also past
// their rotation period then, and are replaced with the next content,
// each registered before an envelope goes to it). A mailbox that expires
// while the chat is not running has its registration note removed at the
// next start.
func TestReplyMailboxExpiry(t *testing.T) {
	c := &testClock{}
	clock = c.now
	t.Cleanup(func() { clock = time.Now })
	hs, rl := newLoggedRelay(t)
	dir := t.TempDir()
	alice := startChat(t, hs.URL, "alice", filepath.Join(dir, "alice.db"))
	bob := startChat(t, hs.URL, "bob", filepath.Join(dir, "bob.db"))
	pub := rl.publishedOf(t, alice, bob)
	exchange := func(tag string) {
		t.Helper()
		alice.cmd("/msg bob " + tag + " to bob")
		bob.expectEver("<alice> " + tag + " to bob")
		bob.cmd("/msg alice " + tag + " to alice")
		alice.expectEver("<bob> " + tag + " to alice")
		alice.expectEver(`✓✓ delivered by bob: "` + tag + ` to bob"`)
		bob.expectEver(`✓✓ delivered by alice: "` + tag + ` to alice"`)
	}
	alice.cmd("/add bob")
	alice.expect("added bob.1")
	exchange("first")
	var aliceOld string // where Bob's first answer went
	for _, e := range rl.snapshot() {
		if !e.register && !e.deleted && pub[e.mailbox] == "" {
			aliceOld = e.mailbox
			break
		}
	}
	alice.cmd("/rotate")
	alice.expect("rotated the reply mailboxes: 1 new, 1 replaced one(s) still read for 14 days")
	exchange("rotated")

	c.advance(sealpost.MailboxGrace + time.Hour)
	mark := rl.len()
	exchange("two weeks later")
	exchange("and on")
	deleted, registered := -1, 0
	for i, e := range rl.snapshot() {
		switch {
		case i < mark:
		case e.deleted && e.mailbox == aliceOld:
			deleted = i
		case e.register:
			registered++
		case pub[e.mailbox] != "":
			t.Fatalf("event %d: an envelope to %s's published mailbox", i, pub[e.mailbox])
		case e.mailbox == aliceOld && deleted >= 0:
			t.Fatalf("event %d: an envelope to Alice's expired mailbox", i)
		}
	}
	if deleted < 0 {
		t.Fatal("Alice's expired reply mailbox was not emptied at the relay")
	}
	if registered < 2 {
		t.Fatalf("%d mailboxes registered after the rotation period, want one new for each side", registered)
	}
	bob.quit()

	// Alice's replaced mailbox expires while her chat is not running: the
	// next start forgets its registration, and notes every other one.
	alice.quit()
	c.advance(sealpost.MailboxGrace + time.Hour)
	alice = startChat(t, hs.URL, "alice", filepath.Join(dir, "alice.db"))
	alice.quit()
	store, err := boltstore.Open(filepath.Join(dir, "alice.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	dev, err := sealpost.Open(context.Background(), store, sealpost.Address{User: "alice", Device: 1},
		sealpost.WithReplyMailboxes(0), sealpost.WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	h, err := openHistory(store.DB())
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range dev.Mailboxes() {
		if m.Owner != nil {
			want = append(want, registeredName(m.ID, false))
		}
	}
	got := h.metaKeys(registeredName(nil, false))
	slices.Sort(want)
	if len(want) != 1 || !slices.Equal(got, want) {
		t.Fatalf("registration notes %q, want those of the reply mailboxes listed %q", got, want)
	}
}

// TestGapStillShown: a gap that does not close (the relay lost an
// envelope) is still shown, once it has been open for findingSettle, and
// so is the drop the sender learns of from the receiver's receipts.
func TestGapStillShown(t *testing.T) {
	hs, rl := newLoggedRelay(t)
	dir := t.TempDir()
	alice := startChat(t, hs.URL, "alice", filepath.Join(dir, "alice.db"))
	bob := startChat(t, hs.URL, "bob", filepath.Join(dir, "bob.db"))
	alice.cmd("/add bob")
	alice.expect("added bob.1")
	alice.cmd("/msg bob hello")
	alice.expectEver(`✓✓ delivered by bob: "hello"`)
	rl.mu.Lock()
	rl.drop = 1
	rl.mu.Unlock()
	alice.cmd("/msg bob lost on the way")
	alice.expect(`✓ sent to bob: "lost on the way"`)
	alice.cmd("/msg bob after the loss")
	bob.expectEver("<alice> after the loss")
	start := time.Now()
	bob.expectEver("! transcript finding with alice.1: gap")
	alice.expectEver("! transcript finding with bob.1: drop")
	if d := time.Since(start); d < findingSettle/2 {
		t.Errorf("the gap was shown after %v, before it had time to close", d)
	}
	if bob.countLines("lost on the way") != 0 {
		t.Fatal("the relay did not lose the envelope")
	}
	alice.quit()
	bob.quit()
}
