package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/sealpost/sealpost/examples/relay/server"
)

// newRelay starts a relay for a test and returns its handler's server.
func newRelay(t *testing.T) *httptest.Server {
	t.Helper()
	return newRelayConfig(t, server.Config{})
}

// newRelayConfig starts a relay with cfg (a data folder, no rate limit and
// a quiet log added) for a test.
func newRelayConfig(t *testing.T, cfg server.Config) *httptest.Server {
	t.Helper()
	cfg.DataDir, cfg.Rate, cfg.Logger = t.TempDir(), -1, slog.New(slog.NewTextHandler(io.Discard, nil))
	relay, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(relay.Handler())
	t.Cleanup(func() { hs.Close(); relay.Close() })
	return hs
}

// proxy forwards TCP connections from its own address to a backend, and
// can drop every connection and stop listening (the relay "goes away")
// and listen again on the same address (it is back).
type proxy struct {
	t       *testing.T
	addr    string
	backend string
	mu      sync.Mutex
	ln      net.Listener
	conns   []net.Conn
}

func newProxy(t *testing.T, backend string) *proxy {
	p := &proxy{t: t, backend: backend}
	p.start("127.0.0.1:0")
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) start(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", p.backend)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			go func() { io.Copy(b, c); b.Close() }()
			go func() { io.Copy(c, b); c.Close() }()
		}
	}()
}

func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestRelayLostAndBack: the client says when its relay connection drops
// and when it is back, once each, and messages sent meanwhile arrive.
func TestRelayLostAndBack(t *testing.T) {
	hs := newRelay(t)
	p := newProxy(t, strings.TrimPrefix(hs.URL, "http://"))
	dir := t.TempDir()
	alice := startChat(t, "http://"+p.addr, "alice", filepath.Join(dir, "alice.db"))
	bob := startChat(t, hs.URL, "bob", filepath.Join(dir, "bob.db"))
	bob.cmd("/add alice")
	bob.expect("added alice.1")

	p.stop()
	alice.expectEver("! relay connection lost")
	bob.cmd("/msg alice sent while alice was away")
	bob.expect(`✓ sent to alice: "sent while alice was away"`)

	p.start(p.addr)
	alice.expectEver("relay connection back")
	alice.expectEver("<bob> sent while alice was away")
	alice.mu.Lock()
	lost := 0
	for _, l := range alice.lines {
		if strings.Contains(l, "relay connection lost") {
			lost++
		}
	}
	alice.mu.Unlock()
	if lost != 1 {
		t.Errorf("the loss was reported %d times, want once", lost)
	}
	alice.quit()
	bob.quit()
}

// TestReadAfterRestart: a bare /read after a restart (no contact chosen
// yet) reads every contact's unread messages instead of refusing an empty
// contact name; a bare /safety asks for a user.
func TestReadAfterRestart(t *testing.T) {
	hs := newRelay(t)
	dir := t.TempDir()
	alice := startChat(t, hs.URL, "alice", filepath.Join(dir, "alice.db"))
	bob := startChat(t, hs.URL, "bob", filepath.Join(dir, "bob.db"))
	alice.cmd("/add bob")
	alice.expect("added bob.1")
	alice.cmd("/msg bob read me later")
	bob.expectEver("<alice> read me later")
	bob.quit()

	bob = startChat(t, hs.URL, "bob", filepath.Join(dir, "bob.db"))
	bob.cmd("/read")
	bob.expect("marked 1 message(s) from alice read")
	alice.expectEver(`✓✓✓ read by bob: "read me later"`)
	bob.cmd("/read")
	bob.expect("nothing unread")
	bob.cmd("/safety")
	bob.expect("! usage: /safety <user>")
	alice.quit()
	bob.quit()
}

// TestHelpAndIncomingTime: /help gives delivered and read different
// marks, and an incoming message shows when it arrived.
func TestHelpAndIncomingTime(t *testing.T) {
	hs := newRelay(t)
	dir := t.TempDir()
	alice := startChat(t, hs.URL, "alice", filepath.Join(dir, "alice.db"))
	bob := startChat(t, hs.URL, "bob", filepath.Join(dir, "bob.db"))
	alice.cmd("/help")
	alice.expect("✓ sent, ✓✓ delivered, ✓✓✓ read")
	if ticks(statusDelivered) == ticks(statusRead) || strings.HasPrefix(ticks(statusRead), "✓✓ ") {
		t.Errorf("delivered %q and read %q look alike", ticks(statusDelivered), ticks(statusRead))
	}
	alice.cmd("/add bob")
	alice.expect("added bob.1")
	alice.cmd("/msg bob what time is it")
	line := bob.expectEver("<alice> what time is it")
	if !regexp.MustCompile(`^\d\d:\d\d:\d\d <alice> what time is it$`).MatchString(line) {
		t.Errorf("incoming line %q has no time", line)
	}
	alice.quit()
	bob.quit()
}

// TestGitignore: the files the examples README tells people to create
// (run from the examples folder) are ignored by git.
func TestGitignore(t *testing.T) {
	f, err := os.Open("../.gitignore")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var patterns []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, m := range regexp.MustCompile("-(?:store|data) ([^\\s`]+)").FindAllStringSubmatch(string(readme), -1) {
		files = append(files, strings.TrimPrefix(m[1], "./"))
	}
	if len(files) < 3 {
		t.Fatalf("found only %q in the README", files)
	}
	for _, file := range files {
		if !ignored(patterns, file) {
			t.Errorf("%s (from the README) is not in examples/.gitignore %q", file, patterns)
		}
	}
}

// ignored is a small gitignore matcher, enough for these patterns: a
// leading "/" anchors to the folder, a trailing "/" names a directory,
// otherwise a glob matches the base name.
func ignored(patterns []string, file string) bool {
	for _, p := range patterns {
		anchored, dir := strings.HasPrefix(p, "/"), strings.HasSuffix(p, "/")
		p = strings.Trim(p, "/")
		name := path.Base(file)
		if anchored {
			name = file
		}
		if ok, _ := path.Match(p, name); ok && (!dir || !strings.Contains(path.Base(file), ".")) {
			return true
		}
	}
	return false
}

// TestBacklogAfterOffline: messages sent while Bob's chat is closed wait
// on the relay; when he starts again they arrive in a burst, which the
// chat receives as batches (Device.ReceiveBatch) and shows each once, in
// order, with delivery receipts going back to Alice.
func TestBacklogAfterOffline(t *testing.T) {
	hs := newRelay(t)
	dir := t.TempDir()
	alice := startChat(t, hs.URL, "alice", filepath.Join(dir, "alice.db"))
	bob := startChat(t, hs.URL, "bob", filepath.Join(dir, "bob.db"))
	alice.cmd("/add bob")
	alice.expect("added bob.1")
	alice.cmd("/msg bob first")
	bob.expectEver("<alice> first")
	bob.quit()
	const n = 40
	for i := range n {
		alice.cmd(fmt.Sprintf("/msg bob backlog %02d", i))
	}
	bob = startChat(t, hs.URL, "bob", filepath.Join(dir, "bob.db"))
	for i := range n {
		bob.expectEver(fmt.Sprintf("<alice> backlog %02d", i))
	}
	alice.expectEver(`✓✓ delivered by bob: "backlog 39"`)
	bob.mu.Lock()
	count := 0
	for _, l := range bob.lines {
		if strings.Contains(l, "<alice> backlog ") {
			count++
		}
	}
	bob.mu.Unlock()
	if count != n {
		t.Fatalf("Bob shows %d backlog lines, want %d", count, n)
	}
	alice.quit()
	bob.quit()
}
