package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sealpost/sealpost/examples/relay/server"
)

// The test binary runs the relay too: started with these variables set,
// it is a relay process (TestMain) that the test can SIGKILL. A relay in
// the test's own process could only be stopped politely.
const (
	envRelayDir   = "SEALPOST_LOADTEST_RELAY_DIR"
	envRelayAddr  = "SEALPOST_LOADTEST_RELAY_ADDR"
	envRelayDepth = "SEALPOST_LOADTEST_RELAY_MAX_DEPTH"
	envRelayNATS  = "SEALPOST_LOADTEST_RELAY_NATS" // an external NATS URL instead of the embedded one
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envRelayDir); dir != "" {
		os.Exit(relayMain(dir, os.Getenv(envRelayAddr), os.Getenv(envRelayDepth)))
	}
	os.Exit(m.Run())
}

// relayMain is the relay process: the relay's defaults (rate limit 20
// requests/s per IP, burst 100) except the mailbox depth, JetStream in
// dir, HTTP on addr. It prints "ready <addr>" once it serves, then
// "mem <heap in use> <heap sys>" every 100 ms, and stops on SIGTERM as
// the relay command does.
func relayMain(dir, addr, depth string) int {
	maxDepth, _ := strconv.Atoi(depth)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cfg := server.Config{DataDir: dir, MaxDepth: maxDepth, Logger: log}
	if url := os.Getenv(envRelayNATS); url != "" {
		cfg.DataDir, cfg.NATSURL = "", url
	}
	r, err := server.New(ctx, cfg)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		return 2
	}
	var ln net.Listener
	for i := 0; ; i++ { // the killed relay's port may take a moment to free
		ln, err = net.Listen("tcp", addr)
		if err == nil || i == 250 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		r.Close()
		return 2
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var out sync.Mutex
	fmt.Printf("ready %s\n", ln.Addr())
	go func() {
		var ms runtime.MemStats
		tick := time.NewTicker(100 * time.Millisecond)
		for range tick.C {
			runtime.ReadMemStats(&ms)
			out.Lock()
			fmt.Printf("mem %d %d\n", ms.HeapInuse, ms.HeapSys)
			out.Unlock()
		}
	}()
	code := 0
	select {
	case <-term:
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "relay: serve:", err)
		code = 2
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if srv.Shutdown(sctx) != nil {
		srv.Close()
	}
	if err := r.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "relay: close:", err)
		code = 2
	}
	return code
}

// relayProc runs the relay process, kills and restarts it on the same
// address and data folder, and keeps its peak memory.
type relayProc struct {
	t       testing.TB
	dir     string // JetStream store, kept across restarts
	logPath string // the relay's stderr, every incarnation
	depth   int
	natsURL string // an external NATS, or "" for the embedded one
	addr    string // fixed after the first start

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	pid  atomic.Int64

	starts    int
	downtimes []time.Duration // from a kill to serving again

	peakHeap atomic.Uint64 // runtime HeapInuse, as the relay reports it
	peakSys  atomic.Uint64 // runtime HeapSys
	peakHWM  atomic.Uint64 // VmHWM (peak RSS) in bytes, from /proc
	cpu      atomic.Int64  // CPU time (user and system) of the exited incarnations
}

func startRelay(t testing.TB, depth int) *relayProc {
	t.Helper()
	tmp := t.TempDir()
	p := &relayProc{t: t, dir: filepath.Join(tmp, "jetstream"), logPath: filepath.Join(tmp, "relay.log"),
		depth: depth, addr: "127.0.0.1:0"}
	p.start()
	t.Cleanup(func() {
		p.mu.Lock()
		cmd, done := p.cmd, p.done
		p.mu.Unlock()
		if cmd != nil {
			cmd.Process.Kill()
			<-done
		}
	})
	return p
}

func (p *relayProc) url() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "http://" + p.addr
}

// start runs a relay process and waits until it serves.
func (p *relayProc) start() {
	p.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		p.t.Fatal(err)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- relay start %d\n", p.starts+1)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envRelayDir+"="+p.dir, envRelayAddr+"="+p.addr,
		envRelayDepth+"="+strconv.Itoa(p.depth), envRelayNATS+"="+p.natsURL)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	ready := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 2 && f[0] == "ready":
				ready <- f[1]
			case len(f) == 3 && f[0] == "mem":
				heap, _ := strconv.ParseUint(f[1], 10, 64)
				sys, _ := strconv.ParseUint(f[2], 10, 64)
				storeMax(&p.peakHeap, heap)
				storeMax(&p.peakSys, sys)
			}
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait() // after the last read of the pipe, as exec requires
		if ps := cmd.ProcessState; ps != nil {
			p.cpu.Add(int64(ps.UserTime() + ps.SystemTime()))
		}
		close(done)
	}()
	select {
	case addr := <-ready:
		p.mu.Lock()
		p.addr, p.cmd, p.done = addr, cmd, done
		p.starts++
		p.mu.Unlock()
		p.pid.Store(int64(cmd.Process.Pid))
	case <-done:
		p.t.Fatalf("the relay process exited before serving: %s", p.logTail())
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		p.t.Fatalf("the relay process did not start: %s", p.logTail())
	}
}

// sample records the relay process's peak RSS so far.
func (p *relayProc) sample() {
	if pid := p.pid.Load(); pid != 0 {
		if hwm, err := procStatus(fmt.Sprintf("/proc/%d/status", pid), "VmHWM:"); err == nil {
			storeMax(&p.peakHWM, hwm)
		}
	}
}

// kill SIGKILLs the relay (JetStream gets no chance to flush or close
// anything) and starts it again on the same address and data folder.
func (p *relayProc) kill() time.Duration {
	p.t.Helper()
	p.sample()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	p.pid.Store(0)
	start := time.Now()
	cmd.Process.Kill()
	<-done
	p.start()
	down := time.Since(start)
	p.downtimes = append(p.downtimes, down)
	return down
}

// stop ends the relay with SIGTERM and reports a failure if it did not
// exit cleanly (a race the detector found in the relay exits with 66).
func (p *relayProc) stop() {
	p.t.Helper()
	p.sample()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	p.pid.Store(0)
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		p.t.Errorf("the relay did not stop within a minute of SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Errorf("the relay exited with %d: %s", code, p.logTail())
	}
	if log, err := os.ReadFile(p.logPath); err == nil {
		for _, bad := range []string{"DATA RACE", "panic:", "fatal error:"} {
			if bytes.Contains(log, []byte(bad)) {
				p.t.Errorf("the relay's log has %q: %s", bad, p.logTail())
			}
		}
	}
}

// logTail returns the end of the relay's stderr.
func (p *relayProc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// procStatus reads a "kB" field of a /proc status file, in bytes.
func procStatus(path, field string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no " + field + " in " + path)
}

func storeMax(v *atomic.Uint64, x uint64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}
