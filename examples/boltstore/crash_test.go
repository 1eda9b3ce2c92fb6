package boltstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/keys"
)

var (
	crashIterations = flag.Int("crash.iterations", 20, "kill-and-restart rounds of TestCrashDuringReceive")
	crashBudget     = flag.Duration("crash.budget", 20*time.Second, "stop TestCrashDuringReceive after this long, whatever crash.iterations says")
)

const (
	crashEnv      = "BOLTSTORE_CRASH_CHILD" // set to the database path in the child
	crashEnvsEnv  = "BOLTSTORE_CRASH_ENVELOPES"
	crashMessages = 12 // envelopes per round
	crashKills    = 2  // kills per round before the run that must finish
)

var (
	aliceAddr = sealpost.Address{User: "alice", Device: 1}
	bobAddr   = sealpost.Address{User: "bob", Device: 1}
)

// TestHelperProcess is the child of TestCrashDuringReceive: it opens Bob's
// Device on the bbolt file and receives every envelope of the file, in
// order, printing one line per envelope as soon as Receive returns:
//
//	ok <index> <message id> <redelivered> <body hex>
//	dup <index>
//	err <index> <error>
//
// It calls Done, after the print, for the even indexes only, so the odd
// ones stay kept and come back Redelivered. The parent kills it with
// SIGKILL at a random point.
func TestHelperProcess(t *testing.T) {
	dbPath := os.Getenv(crashEnv)
	if dbPath == "" {
		t.Skip("the child of TestCrashDuringReceive")
	}
	if err := crashChild(dbPath, os.Getenv(crashEnvsEnv), os.Stdout); err != nil {
		fmt.Fprintln(os.Stdout, "fatal", err)
		os.Exit(3)
	}
	os.Exit(0)
}

func crashChild(dbPath, envPath string, out *os.File) error {
	ctx := context.Background()
	envs, err := readEnvelopes(envPath)
	if err != nil {
		return err
	}
	s, err := Open(dbPath)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := sealpost.Open(ctx, s, bobAddr)
	if err != nil {
		return err
	}
	// Each line goes out in one write(2) on an unbuffered file, so a
	// printed line is a whole line and means Receive had returned.
	for i, env := range envs {
		in, err := d.Receive(ctx, env)
		switch {
		case err == nil:
			fmt.Fprintf(out, "ok %d %x %t %x\n", i, in.ID[:], in.Redelivered, in.Body)
			if i%2 == 0 {
				if err := d.Done(ctx, in.ID); err != nil {
					return fmt.Errorf("Done: %w", err)
				}
			}
		case errors.Is(err, sealpost.ErrDuplicate):
			fmt.Fprintf(out, "dup %d\n", i)
		default:
			fmt.Fprintf(out, "err %d %v\n", i, strings.ReplaceAll(err.Error(), "\n", " "))
		}
	}
	fmt.Fprintln(out, "end")
	return nil
}

func writeEnvelopes(path string, envs [][]byte) error {
	var buf bytes.Buffer
	for _, e := range envs {
		buf.WriteString(hex.EncodeToString(e))
		buf.WriteByte('\n')
	}
	return os.WriteFile(path, buf.Bytes(), 0o600)
}

func readEnvelopes(path string) ([][]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, line := range strings.Fields(string(raw)) {
		e, err := hex.DecodeString(line)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// crashRound is one stream of envelopes for Bob and what the parent knows
// about them.
type crashRound struct {
	dir, db, envs string
	ids           []sealpost.MessageID
	bodies        [][]byte
	printed       []bool // a child printed an ok line for it before dying
	// unprinted counts results that came back Redelivered although no
	// child had printed them: the kill landed between Apply and the print.
	unprinted int
}

// newCrashRound makes Bob's device on a fresh bbolt file and has Alice
// write crashMessages envelopes to him, delivered in a random order. With
// confirmed, Bob has already received Alice's first message and replied,
// so the stream is ratchet messages found by their tags; without, every
// envelope is a first contact carrying the session start.
func newCrashRound(t *testing.T, dir string, rng *rand.Rand, confirmed bool) *crashRound {
	t.Helper()
	ctx := context.Background()
	r := &crashRound{dir: dir, db: filepath.Join(dir, "bob.db"), envs: filepath.Join(dir, "envelopes")}
	s, err := Open(r.db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bob, err := sealpost.Open(ctx, s, bobAddr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bob.Bundle(ctx, 1)
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
	alice, err := sealpost.Open(ctx, sealpost.NewMemoryStore(), aliceAddr)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.StartSession(ctx, bobAddr, parsed); err != nil {
		t.Fatal(err)
	}
	if confirmed {
		o, err := alice.Send(ctx, bobAddr, []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		in, err := bob.Receive(ctx, o.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		if err := bob.Done(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
		reply, err := bob.Send(ctx, aliceAddr, []byte("hi"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Receive(ctx, reply.Envelope); err != nil {
			t.Fatal(err)
		}
	}
	envs := make([][]byte, crashMessages)
	r.ids = make([]sealpost.MessageID, crashMessages)
	r.bodies = make([][]byte, crashMessages)
	r.printed = make([]bool, crashMessages)
	for n, i := range rng.Perm(crashMessages) {
		body := fmt.Appendf(nil, "message %d", n)
		o, err := alice.Send(ctx, bobAddr, body)
		if err != nil {
			t.Fatal(err)
		}
		envs[i], r.ids[i], r.bodies[i] = o.Envelope, o.ID, body
	}
	if err := writeEnvelopes(r.envs, envs); err != nil {
		t.Fatal(err)
	}
	return r
}

// run starts a child on the round. With killAfter >= 0 it SIGKILLs the
// child once it has printed killAfter lines, after a further random delay
// of up to two milliseconds; with -1 the child must finish. It returns the
// complete lines the child printed.
func (r *crashRound) run(t *testing.T, rng *rand.Rand, killAfter int) (lines []string, finished bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	// Under -race the child would sleep a second at exit to flush reports
	// (GORACE atexit_sleep_ms); a report still fails the exit status.
	cmd.Env = append(os.Environ(), crashEnv+"="+r.db, crashEnvsEnv+"="+r.envs,
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The delay is drawn here, not in the kill goroutine: rng is not safe
	// for concurrent use, and the goroutine may outlive this call.
	delay := time.Duration(rng.IntN(2000)) * time.Microsecond
	kill := func() {
		time.Sleep(delay)
		cmd.Process.Kill() // SIGKILL
	}
	if killAfter == 0 {
		go kill()
	}
	br := bufio.NewReader(stdout)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			break // EOF, or a line cut by the kill: not printed whole
		}
		lines = append(lines, strings.TrimSuffix(line, "\n"))
		if len(lines) == killAfter {
			go kill()
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		finished = true
	case errors.As(err, &ee) && killAfter >= 0 && !ee.Exited():
		// killed
	default:
		t.Fatalf("child: %v\nstdout:\n%s\nstderr:\n%s", err, strings.Join(lines, "\n"), stderr.String())
	}
	return lines, finished
}

// check applies one run's lines to what the parent knows. An ok line must
// carry exactly the id and body Alice sent; a message printed before must
// come back Redelivered (odd, never Done; even, killed before Done) or
// ErrDuplicate (even, after Done); ErrDuplicate for a message never
// printed, and any other error, is a failure.
func (r *crashRound) check(t *testing.T, lines []string) (seen []bool, ended bool) {
	t.Helper()
	seen = make([]bool, len(r.ids))
	next := 0
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 1 && f[0] == "end" {
			ended = true
			continue
		}
		if len(f) < 2 {
			t.Fatalf("child printed %q", line)
		}
		i, err := strconv.Atoi(f[1])
		if err != nil || i != next {
			t.Fatalf("child printed %q, want index %d", line, next)
		}
		next++
		seen[i] = true
		switch f[0] {
		case "ok":
			if len(f) != 5 {
				f = append(f, "") // an empty body prints as nothing
			}
			if f[2] != hex.EncodeToString(r.ids[i][:]) || f[4] != hex.EncodeToString(r.bodies[i]) {
				t.Fatalf("envelope %d: got id %s body %s, sent id %x body %q", i, f[2], f[4], r.ids[i][:], r.bodies[i])
			}
			if r.printed[i] && f[3] != "true" {
				t.Fatalf("envelope %d: a second fresh result after an earlier Receive returned: %q", i, line)
			}
			if !r.printed[i] && f[3] == "true" {
				r.unprinted++
			}
			r.printed[i] = true
		case "dup":
			if !r.printed[i] || i%2 != 0 {
				t.Fatalf("envelope %d: ErrDuplicate, but no Receive of it had returned (or Done was never called)", i)
			}
		default:
			t.Fatalf("envelope %d: %s", i, line)
		}
	}
	return seen, ended
}

// TestCrashDuringReceive kills a process at random points in a stream of
// Receive calls on a bbolt Store and restarts it on the same file. Every
// message whose Receive returned before the kill must be persisted (a
// redelivery gives the same result with Redelivered, or ErrDuplicate after
// Done, never a fresh result, a different one or a decrypt failure), and
// every other one must still be received in the end.
func TestCrashDuringReceive(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	start := time.Now()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>32))
	var rounds, kills, killedMidStream, unprinted int
	for it := 0; it < *crashIterations; it++ {
		if time.Since(start) > *crashBudget {
			t.Logf("stopping after %d rounds: over the %v budget", rounds, *crashBudget)
			break
		}
		r := newCrashRound(t, t.TempDir(), rng, it%2 == 0)
		for range crashKills {
			lines, finished := r.run(t, rng, rng.IntN(crashMessages+1))
			if _, ended := r.check(t, lines); finished && !ended {
				t.Fatalf("child exited without printing end: %q", lines)
			}
			if !finished {
				kills++
				if len(lines) < crashMessages {
					killedMidStream++
				}
			}
		}
		lines, _ := r.run(t, rng, -1)
		seen, ended := r.check(t, lines)
		if !ended {
			t.Fatalf("the last run did not finish: %q", lines)
		}
		for i := range seen {
			if !seen[i] || !r.printed[i] {
				t.Fatalf("envelope %d was never received", i)
			}
		}
		rounds++
		unprinted += r.unprinted
	}
	t.Logf("%d rounds, %d kills (%d mid-stream, %d between a commit and its print) in %v",
		rounds, kills, killedMidStream, unprinted, time.Since(start).Round(time.Millisecond))
	if rounds == 0 {
		t.Fatal("no round ran")
	}
}
