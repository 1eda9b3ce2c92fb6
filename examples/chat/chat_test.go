package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/examples/relay/server"
)

// term is one chat client driven through its stdin and stdout.
type term struct {
	t     *testing.T
	name  string
	in    *io.PipeWriter
	done  chan error
	mu    sync.Mutex
	lines []string
	mark  int           // expect searches from here
	more  chan struct{} // a line arrived
}

// startChat starts a client with the test flags, and extra ones.
func startChat(t *testing.T, relayURL, me, store string, extra ...string) *term {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c := &term{t: t, name: me, in: inW, done: make(chan error, 1), more: make(chan struct{}, 1)}
	args := []string{"-relay", relayURL, "-me", me, "-store", store,
		"-receipt-min", "0", "-receipt-max", "0", "-flush", "20ms", "-one-time", "3"}
	args = append(args, extra...)
	go func() {
		err := run(context.Background(), args, inR, outW)
		outW.Close()
		c.done <- err
	}()
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
		}
	}()
	device := "1"
	if i := slices.Index(extra, "-device"); i >= 0 && i+1 < len(extra) {
		device = extra[i+1]
	}
	c.expect("ready: " + me + "." + device)
	return c
}

// cmd types a line; later expects look only at output after it.
func (c *term) cmd(line string) {
	c.t.Helper()
	c.mu.Lock()
	c.mark = len(c.lines)
	c.mu.Unlock()
	if _, err := fmt.Fprintln(c.in, line); err != nil {
		c.t.Fatalf("%s: typing %q: %v", c.name, line, err)
	}
}

// expect waits for an output line containing want, after the last cmd.
func (c *term) expect(want string) string {
	c.t.Helper()
	return c.expectFrom(want, true)
}

// expectEver waits for an output line containing want, at any time.
func (c *term) expectEver(want string) string {
	c.t.Helper()
	return c.expectFrom(want, false)
}

func (c *term) expectFrom(want string, sinceCmd bool) string {
	c.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		c.mu.Lock()
		from := 0
		if sinceCmd {
			from = c.mark
		}
		for _, l := range c.lines[from:] {
			if strings.Contains(l, want) {
				c.mu.Unlock()
				return l
			}
		}
		all := strings.Join(c.lines, "\n")
		c.mu.Unlock()
		select {
		case <-c.more:
		case err := <-c.done:
			c.t.Fatalf("%s exited (%v) before printing %q:\n%s", c.name, err, want, all)
		case <-deadline:
			c.t.Fatalf("%s never printed %q:\n%s", c.name, want, all)
		}
	}
}

func (c *term) quit() {
	c.t.Helper()
	c.cmd("/quit")
	select {
	case err := <-c.done:
		if err != nil {
			c.t.Errorf("%s: run: %v", c.name, err)
		}
	case <-time.After(15 * time.Second):
		c.t.Fatalf("%s did not quit", c.name)
	}
	c.in.Close()
	if testing.Verbose() {
		c.mu.Lock()
		c.t.Logf("%s's terminal:\n%s", c.name, strings.Join(c.lines, "\n"))
		c.mu.Unlock()
	}
}

var safetyRE = regexp.MustCompile(`safety number with \S+: ([0-9 ]+)$`)

func TestTwoClients(t *testing.T) {
	relay, err := server.New(context.Background(), server.Config{DataDir: t.TempDir(), Rate: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(relay.Handler())
	t.Cleanup(func() { hs.Close(); relay.Close() })
	dir := t.TempDir()
	alice := startChat(t, hs.URL, "alice", filepath.Join(dir, "alice.db"))
	bob := startChat(t, hs.URL, "bob", filepath.Join(dir, "bob.db"))

	alice.cmd("/add nobody")
	alice.expect("nobody.1 has published no bundle")
	alice.cmd("/add bob")
	alice.expect("added bob.1 (session from a one-time bundle)")

	alice.cmd("/msg bob hello bob")
	alice.expect(`✓ sent to bob: "hello bob"`)
	bob.expectEver("new contact alice.1")
	bob.expectEver("<alice> hello bob")
	alice.expectEver(`✓✓ delivered by bob: "hello bob"`)

	bob.cmd("/read alice")
	bob.expect("marked 1 message(s) from alice read")
	alice.expectEver(`✓✓✓ read by bob: "hello bob"`)

	bob.cmd("/msg alice hi alice")
	alice.expectEver("<bob> hi alice")
	alice.cmd("/to bob")
	alice.expect("talking to bob")
	alice.cmd("plain text goes to bob")
	bob.expectEver("<alice> plain text goes to bob")

	alice.cmd("/safety bob")
	as := safetyRE.FindStringSubmatch(alice.expect("safety number with bob.1"))
	bob.cmd("/safety alice")
	bs := safetyRE.FindStringSubmatch(bob.expect("safety number with alice.1"))
	if as == nil || bs == nil || as[1] != bs[1] || len(strings.ReplaceAll(as[1], " ", "")) != 60 {
		t.Errorf("safety numbers %q and %q", as, bs)
	}
	alice.cmd("/findings bob")
	alice.expect("no findings")
	alice.cmd("/history bob")
	alice.expect("me → bob: hello bob  [✓✓✓ read]")
	alice.expect("bob: hi alice  [received]")
	alice.cmd("/contacts")
	alice.expect("bob.1")
	alice.cmd("/nonsense")
	alice.expect("unknown command")

	// The history, the session, the ticks and the relay keys survive a
	// restart: the receipt below arrives only if Alice reads her mailbox
	// with the owner key she registered, and the relay takes her bundle
	// only signed with her first upload key.
	alice.quit()
	alice = startChat(t, hs.URL, "alice", filepath.Join(dir, "alice.db"))
	alice.cmd("/publish 2")
	alice.expect("published a bundle with 2 one-time prekeys")
	alice.cmd("/history bob")
	alice.expect("me → bob: hello bob  [✓✓✓ read]")
	alice.cmd("/msg bob after a restart")
	bob.expectEver("<alice> after a restart")
	alice.expectEver(`✓✓ delivered by bob: "after a restart"`)
	bob.cmd("/findings")
	bob.expect("no findings")
	alice.quit()
	bob.quit()
}
