// Package pgtest runs a real PostgreSQL for tests: Debian's server
// binaries, started by the test as an unprivileged user (PostgreSQL refuses
// to run as root), listening on 127.0.0.1 at a free port with its unix
// socket in a private temporary directory, its data thrown away at the end.
//
// A package's tests share one server, started on first use and stopped by
// Main (call it from TestMain), and each test gets a fresh database from
// DB. A test that stops or restarts PostgreSQL (a fault test) starts its
// own with Start. When PostgreSQL is not installed, tests skip and say how
// to install it.
package pgtest

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// readyTimeout bounds initdb and a server's start on a loaded machine.
const readyTimeout = 60 * time.Second

// installHint is the reason a test gives when it skips.
const installHint = "PostgreSQL server not installed (Debian: apt-get install postgresql; or put postgres and initdb on PATH)"

// Server is one running PostgreSQL. Port stays the same across Restart.
type Server struct {
	// Port is the loopback TCP port the server listens on.
	Port int

	bin     string   // directory of postgres and initdb
	root    string   // temporary directory: data/ and the socket
	user    *account // nil: run as ourselves
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	log     *logTail
	dbCount atomic.Int64
}

// Start runs a PostgreSQL of the test's own until the test ends. Use it
// for tests that stop or restart the server; others use DB.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start()
	if errors.Is(err, errNotInstalled) {
		t.Skip(installHint)
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s
}

var shared struct {
	sync.Mutex
	main bool // Main is running the tests
	srv  *Server
	err  error
}

// Main runs a package's tests and then stops the shared server if a test
// started one. Use it as the package's TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// or, with goleak (which checks after the server stopped):
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.M(m)) }
func Main(m *testing.M) int { return M(m).Run() }

// Runner is what TestMain runs: *testing.M, or M's wrapper of it.
type Runner interface{ Run() int }

// M wraps m so that its Run stops the shared server after the tests.
func M(m Runner) Runner { return runner{m} }

type runner struct{ m Runner }

func (r runner) Run() int {
	shared.Lock()
	shared.main = true
	shared.Unlock()
	code := r.m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.srv != nil {
		if err := shared.srv.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		shared.srv = nil
	}
	return code
}

// DB creates a fresh, empty database on the package's shared server
// (starting it on first use) and returns its connection URL; the database
// is dropped when the test ends.
func DB(t testing.TB) string {
	t.Helper()
	return Shared(t).DB(t)
}

// Shared returns the package's shared server, starting it on first use.
// Do not stop or restart it: other tests use it. It needs Main.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.main {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Main, which stops the shared server")
	}
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = start()
	}
	if errors.Is(shared.err, errNotInstalled) {
		t.Skip(installHint)
	}
	if shared.err != nil {
		t.Fatalf("pgtest: %v", shared.err)
	}
	return shared.srv
}

// URL returns the connection URL of database name on the server.
func (s *Server) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, name)
}

// DB creates a fresh, empty database and returns its connection URL; the
// database is dropped, its connections closed, when the test ends.
func (s *Server) DB(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.dbCount.Add(1))
	if err := s.admin(fmt.Sprintf("CREATE DATABASE %s", name)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		// A test that stopped the server has nothing left to drop.
		if !s.running() {
			return
		}
		// FORCE ends the connections a store under test left open.
		if err := s.admin(fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	return s.URL(name)
}

// admin runs one statement on the maintenance database.
func (s *Server) admin(stmt string) error {
	db, err := sql.Open("pgx", s.URL("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}

// Restart stops the server (if it runs) and starts it again on the same
// port with the same data, as an operator's restart would.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Stop(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := s.run(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

// Stop shuts the server down (fast shutdown: open transactions are rolled
// back, clients disconnected) and waits for it; the data stays for
// Restart. Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	cmd, exited, log := s.cmd, s.exited, s.log
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
		return nil
	case <-time.After(readyTimeout):
		// Immediate shutdown, then the hard way.
		_ = cmd.Process.Signal(syscall.SIGQUIT)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	return fmt.Errorf("postgres did not stop in %v:\n%s", readyTimeout, log)
}

// Close stops the server and removes its data.
func (s *Server) Close() error {
	err := s.Stop()
	if rmErr := os.RemoveAll(s.root); rmErr != nil && err == nil {
		err = rmErr
	}
	return err
}

func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

var errNotInstalled = errors.New(installHint)

// start creates a data directory owned by the unprivileged user, runs
// initdb and starts the server.
func start() (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}
	if s.user, err = serverUser(); err != nil {
		return nil, err
	}
	// Not t.TempDir: its parents are private to root, and the server's
	// user must reach its own directory.
	if s.root, err = os.MkdirTemp("", "pgtest-"); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(s.root)
		}
	}()
	if s.user != nil {
		if err := os.Chown(s.root, s.user.uid, s.user.gid); err != nil {
			return nil, err
		}
	}
	initdb := s.command(filepath.Join(bin, "initdb"), "-D", s.data(), "-U", "postgres",
		"--auth=trust", "--no-locale", "--encoding=UTF8", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	if err := s.run(); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

func (s *Server) data() string { return filepath.Join(s.root, "data") }

// command prepares a program run as the server's user.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.root
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
	cmd.SysProcAttr = sysProcAttr(s.user)
	return cmd
}

// run starts postgres and waits until it accepts connections.
func (s *Server) run() error {
	// Durability is worthless for throw-away data and costs the shared
	// machine's disk; the settings keep the server small.
	cmd := s.command(filepath.Join(s.bin, "postgres"), "-D", s.data(),
		"-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-k", s.root,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB",
		"-c", "logging_collector=off", "-c", "log_min_messages=warning")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	log := &logTail{}
	ready := make(chan struct{})
	exited := make(chan struct{})
	// The reader ends when postgres closes stderr, i.e. when it exits; the
	// waiter then reaps it.
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			log.add(line)
			if strings.Contains(line, "database system is ready to accept connections") {
				once.Do(func() { close(ready) })
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case <-ready:
	case <-exited:
		return fmt.Errorf("postgres exited while starting:\n%s", log)
	case <-time.After(readyTimeout):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("postgres not ready after %v:\n%s", readyTimeout, log)
	}
	s.mu.Lock()
	s.cmd, s.exited, s.log = cmd, exited, log
	s.mu.Unlock()
	return nil
}

// findBin finds the directory of postgres and initdb: on PATH, else the
// newest of Debian's /usr/lib/postgresql/*/bin (not on PATH there).
func findBin() (string, error) {
	if p, err := exec.LookPath("postgres"); err == nil {
		dir := filepath.Dir(p)
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dir = filepath.Dir(real)
		}
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	return "", errNotInstalled
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// freePort returns a loopback TCP port that was free a moment ago; the
// server needs it before it starts, and keeps it across restarts.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail keeps the server's last log lines for error messages.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *logTail) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if len(l.lines) > 50 {
		l.lines = l.lines[1:]
	}
}

func (l *logTail) String() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
