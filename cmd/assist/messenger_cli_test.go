package main

import (
	"bufio"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assist-project/assist/identity"
	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/internal/logfile"
)

// cliUser is one person on one machine: their own ASSIST_CONFIG_DIR.
type cliUser struct {
	name string
	dir  string
}

func newCLIUser(t *testing.T, name string) *cliUser {
	return &cliUser{name: name, dir: filepath.Join(t.TempDir(), name)}
}

// cmd returns the assist command with this user's config dir.
func (u *cliUser) cmd(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(lab.AssistBinary(t), args...)
	// Its own state directory too: the audit log there is signed with
	// this user's key.
	cmd.Env = append(os.Environ(), identity.EnvConfigDir+"="+u.dir, logfile.EnvStateDir+"="+filepath.Join(u.dir, "state"), "ASSIST_LOG=warn")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// run runs a command to its end and returns stdout, failing the test on a
// non-zero exit.
func (u *cliUser) run(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := u.exec(t, args...)
	if err != nil {
		t.Fatalf("%s: assist %s: %v\n%s%s", u.name, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// try runs a command to its end and returns stdout and stderr together, for
// failures.
func (u *cliUser) try(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, errOut, err := u.exec(t, args...)
	return out + errOut, err
}

func (u *cliUser) exec(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := u.cmd(t, args...)
	var errOut strings.Builder
	cmd.Stderr = &errOut
	timer := time.AfterFunc(60*time.Second, func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	defer timer.Stop()
	out, err := cmd.Output()
	return string(out), errOut.String(), err
}

// fingerprint is the fingerprint of the user's device key, read from the
// key file itself.
func (u *cliUser) fingerprint(t *testing.T) string {
	t.Helper()
	seed, err := os.ReadFile(filepath.Join(u.dir, identity.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return identity.Fingerprint(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
}

func (u *cliUser) config(t *testing.T) identity.Config {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(u.dir, identity.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var c identity.Config
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// proc is a long-running assist command whose stdout lines the test reads.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *syncBuffer
	done   chan error
	all    []string // every line expect has read
}

// seen returns every line expect has read so far.
func (p *proc) seen() string { return strings.Join(p.all, "\n") }

func (u *cliUser) start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startProc(t, u.name+": assist "+strings.Join(args, " "), u.cmd(t, args...))
}

// startOnTerminal starts assist ARGS on a new pseudo-terminal (script(1)),
// which copies the test's writes to it; stdout then carries the command's
// stdout, stderr and the terminal's echo.
func (u *cliUser) startOnTerminal(t *testing.T, args ...string) *proc {
	t.Helper()
	lab.Need(t, "script")
	cmd := u.cmd(t, args...)
	line := strings.Join(append([]string{cmd.Path}, args...), " ")
	sc := exec.Command("script", "-qfec", line, "/dev/null")
	sc.Env, sc.SysProcAttr = cmd.Env, cmd.SysProcAttr
	return startProc(t, u.name+": (terminal) assist "+strings.Join(args, " "), sc)
}

func startProc(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: cmd,
		lines: make(chan string, 100), stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(p.kill)
	return p
}

// kill ends the process (its whole group) and waits for it.
func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	for range p.lines {
	}
}

// interrupt sends Ctrl-C's signal.
func (p *proc) interrupt() { _ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGINT) }

// expect waits for the next stdout line matching re (skipping others) and
// returns its submatches.
func (p *proc) expect(re string) []string {
	p.t.Helper()
	return p.expectWithin(re, 20*time.Second)
}

// wait waits for the process to end and returns its error.
func (p *proc) wait() error {
	p.t.Helper()
	for range p.lines {
	}
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(20 * time.Second):
		p.t.Fatalf("%s still running; stderr: %s", p.name, p.stderr)
		return nil
	}
}

func (p *proc) send(line string) {
	p.t.Helper()
	if _, err := fmt.Fprintln(p.stdin, line); err != nil {
		p.t.Fatalf("%s: writing %q: %v", p.name, line, err)
	}
}

// login logs u in to srv (trusting its certificate on first use) and
// checks the lines.
func (u *cliUser) login(t *testing.T, srv *servedProc, args ...string) {
	t.Helper()
	out := u.run(t, append([]string{"login", srv.URL, "--user", u.name}, args...)...)
	if !strings.Contains(out, "logged in: "+u.name+" on "+srv.URL+"\n") {
		t.Fatalf("%s: login printed %q", u.name, out)
	}
}

// pair makes a and b contacts with the CLI and checks that each printed
// the other's real key.
func pairCLI(t *testing.T, a, b *cliUser) {
	t.Helper()
	inv := a.start(t, "contacts", "invite")
	code := inv.expect(`^contact code: ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})$`)[1]
	out := b.run(t, "contacts", "add", code)
	if want := fmt.Sprintf("contact added: %s (key %s)\n", a.name, a.fingerprint(t)); out != want {
		t.Fatalf("%s: contacts add printed %q, want %q", b.name, out, want)
	}
	inv.expect(fmt.Sprintf(`^contact added: %s \(key %s\)$`, b.name, b.fingerprint(t)))
	if err := inv.wait(); err != nil {
		t.Fatalf("contacts invite: %v; stderr: %s", err, inv.stderr)
	}
}

func TestMessengerCLILogin(t *testing.T) {
	srv := startServe(t, t.TempDir())
	ada := newCLIUser(t, "ada")
	out := ada.run(t, "login", srv.URL, "--user", "ada", "--display-name", "Ada Lovelace")
	// Trust on first use: the fingerprint shown and saved is the server's.
	if want := "server fingerprint: " + srv.Fingerprint + "\nlogged in: ada on " + srv.URL + "\n"; out != want {
		t.Fatalf("first login printed %q, want %q", out, want)
	}
	c := ada.config(t)
	if c.Server != srv.URL || c.Fingerprint != srv.Fingerprint || c.User != "ada" || c.Display != "Ada Lovelace" {
		t.Fatalf("config after login: %+v", c)
	}
	for _, f := range []string{identity.KeyFile, identity.ConfigFile} {
		fi, err := os.Stat(filepath.Join(ada.dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want 0600", f, err, fi.Mode())
		}
	}
	key := ada.fingerprint(t)

	// Again: the same account and key, the saved pin, no fingerprint line.
	if out := ada.run(t, "login", srv.URL); out != "logged in: ada on "+srv.URL+"\n" {
		t.Fatalf("second login printed %q", out)
	}
	if ada.fingerprint(t) != key {
		t.Fatal("the device key changed on the second login")
	}

	// The name is taken for another device key.
	eve := newCLIUser(t, "eve")
	if out, err := eve.try(t, "login", srv.URL, "--user", "ada"); err == nil || !strings.Contains(out, "taken") {
		t.Fatalf("login as a taken name: %v %q", err, out)
	}
	// A wrong pin is refused before anything is sent.
	wrong := "sha256:" + strings.Repeat("00", 32)
	if out, err := eve.try(t, "login", srv.URL, "--user", "eve", "--server-fingerprint", wrong); err == nil || !strings.Contains(out, "fingerprint") {
		t.Fatalf("login with a wrong pin: %v %q", err, out)
	}
	// --server-fingerprint pins without the first-use line.
	if out := eve.run(t, "login", srv.URL, "--user", "eve", "--server-fingerprint", srv.Fingerprint); out != "logged in: eve on "+srv.URL+"\n" {
		t.Fatalf("login with a pin printed %q", out)
	}
	// Commands after login need no server.
	if out := eve.run(t, "contacts"); out != "" {
		t.Fatalf("contacts of a new account: %q", out)
	}
	// Before login: a plain message.
	nobody := newCLIUser(t, "nobody")
	if out, err := nobody.try(t, "contacts"); err == nil || !strings.Contains(out, "assist login") {
		t.Fatalf("contacts before login: %v %q", err, out)
	}
}

func TestMessengerCLIContactsPresence(t *testing.T) {
	srv := startServe(t, t.TempDir())
	ada, bob := newCLIUser(t, "ada"), newCLIUser(t, "bob")
	ada.login(t, srv)
	bob.login(t, srv)
	pairCLI(t, ada, bob)
	// The pinned keys are the peers' real keys.
	if got := ada.config(t).Contacts["bob"]; len(got.Keys) != 1 {
		t.Fatalf("ada's pinned keys for bob: %+v", got)
	}
	if out := ada.run(t, "contacts"); out != "bob offline\n" {
		t.Fatalf("ada's contacts: %q, want bob offline", out)
	}

	watch := ada.start(t, "contacts", "--watch")
	watch.expect(`^presence: bob offline$`)
	bobWatch := bob.start(t, "contacts", "--watch")
	start := time.Now()
	watch.expect(`^presence: bob online$`)
	t.Logf("bob online seen by ada after %v", time.Since(start))
	bobWatch.expect(`^presence: ada online$`)
	if out := bob.run(t, "contacts"); out != "ada online\n" {
		t.Fatalf("bob's contacts while ada watches: %q", out)
	}
	bobWatch.kill()
	start = time.Now()
	watch.expect(`^presence: bob offline$`)
	t.Logf("bob offline seen by ada after %v", time.Since(start))

	// A stranger sees nothing of either, and cannot ask.
	eve := newCLIUser(t, "eve")
	eve.login(t, srv)
	if out := eve.run(t, "contacts"); out != "" {
		t.Fatalf("eve's contacts: %q", out)
	}
	if out, err := eve.try(t, "ask", "ada"); err == nil || !strings.Contains(out, "not one of your contacts") {
		t.Fatalf("eve asks ada: %v %q", err, out)
	}

	// Remove: both lose each other, and the pinned key goes.
	if out := ada.run(t, "contacts", "remove", "bob"); out != "removed: bob\n" {
		t.Fatalf("remove printed %q", out)
	}
	watch.expect(`^removed: bob$`)
	if _, ok := ada.config(t).Contacts["bob"]; ok {
		t.Error("bob's key is still pinned after remove")
	}
	if out := bob.run(t, "contacts"); out != "" {
		t.Fatalf("bob's contacts after remove: %q", out)
	}

	// Block: bob can neither pair with ada again nor ask her.
	pairCLI(t, ada, bob)
	if out := ada.run(t, "contacts", "block", "bob"); out != "blocked: bob\n" {
		t.Fatalf("block printed %q", out)
	}
	if out, err := bob.try(t, "ask", "ada"); err == nil || !strings.Contains(out, "not one of your contacts") {
		t.Fatalf("bob asks ada after block: %v %q", err, out)
	}
	inv := ada.start(t, "contacts", "invite")
	code := inv.expect(`^contact code: (\S+)$`)[1]
	if out, err := bob.try(t, "contacts", "add", code); err == nil {
		t.Fatalf("bob paired with ada after block: %q", out)
	}
	inv.kill()
	if out := ada.run(t, "contacts", "unblock", "bob"); out != "unblocked: bob\n" {
		t.Fatalf("unblock printed %q", out)
	}
	pairCLI(t, ada, bob)
}

func TestMessengerCLIAsk(t *testing.T) {
	srv := startServe(t, t.TempDir())
	ada, bob := newCLIUser(t, "ada"), newCLIUser(t, "bob")
	ada.login(t, srv)
	bob.login(t, srv)
	pairCLI(t, ada, bob)

	// Bob is offline when ada asks: he gets the request when he comes
	// online.
	ask := ada.start(t, "ask", "bob")
	ask.expect(`^asked: bob$`)
	reqs := bob.start(t, "requests", "--no-browser")
	id := reqs.expect(`^request: (\S+) from ada$`)[1]

	// Declined.
	reqs.send("decline " + id)
	reqs.expect(`^declined: ` + regexp.QuoteMeta(id) + `$`)
	ask.expect(`^declined by bob$`)
	if err := ask.wait(); err != nil {
		t.Fatalf("ask after decline: %v; stderr: %s", err, ask.stderr)
	}

	// Cancelled with Ctrl-C before an answer.
	ask = ada.start(t, "ask", "bob")
	ask.expect(`^asked: bob$`)
	id = reqs.expect(`^request: (\S+) from ada$`)[1]
	ask.interrupt()
	ask.expect(`^cancelled$`)
	reqs.expect(`^closed: ` + regexp.QuoteMeta(id) + ` cancelled$`)

	// Accepted: both sides name each other; each checks the other's key
	// against its pins before the session starts.
	ask = ada.start(t, "ask", "bob")
	ask.expect(`^asked: bob$`)
	id = reqs.expect(`^request: (\S+) from ada$`)[1]
	reqs.send("accept " + id)
	reqs.expect(`^accepted: ` + regexp.QuoteMeta(id) + ` from ada$`)
	ask.expect(`^accepted by bob$`)
	ask.kill()
	reqs.kill()

	// An offer: bob offers, ada (the novice) accepts in her requests.
	offer := bob.start(t, "offer", "ada")
	offer.expect(`^asked: ada$`)
	adaReqs := ada.start(t, "requests")
	id = adaReqs.expect(`^request: (\S+) from bob$`)[1]
	adaReqs.send("accept " + id)
	adaReqs.expect(`^accepted: ` + regexp.QuoteMeta(id) + ` from bob$`)
	offer.expect(`^accepted by ada$`)
	if !strings.Contains(adaReqs.stderr.String(), "bob offers to help you") {
		t.Errorf("ada was not told that bob offers help; stderr: %s", adaReqs.stderr)
	}
}

func TestMessengerCLIDevices(t *testing.T) {
	srv := startServe(t, t.TempDir())
	ada, laptop, bob := newCLIUser(t, "ada"), newCLIUser(t, "ada"), newCLIUser(t, "bob")
	ada.login(t, srv)
	bob.login(t, srv)
	pairCLI(t, ada, bob)
	devRE := `^([a-z2-7]{12}) (online|offline) (.+?)( \(this device\))?$`
	list := func(u *cliUser) [][]string {
		var out [][]string
		for _, l := range strings.Split(strings.TrimSpace(u.run(t, "devices")), "\n") {
			m := regexp.MustCompile(devRE).FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("devices printed %q", l)
			}
			out = append(out, m)
		}
		return out
	}
	if l := list(ada); len(l) != 1 || l[0][4] == "" || l[0][2] != "online" {
		t.Fatalf("devices of a new account: %q", l)
	}

	add := ada.start(t, "devices", "add")
	code := add.expect(`^device code: (\S+)$`)[1]
	// The name is taken, but the code links this device to the account.
	if out := laptop.run(t, "login", srv.URL, "--user", "ada", "--code", code); !strings.HasSuffix(out, "logged in: ada on "+srv.URL+"\n") {
		t.Fatalf("login --code printed %q", out)
	}
	id := add.expect(fmt.Sprintf(`^device added: ([a-z2-7]{12}) \(key %s\)$`, laptop.fingerprint(t)))[1]
	if err := add.wait(); err != nil {
		t.Fatalf("devices add: %v; stderr: %s", err, add.stderr)
	}
	// The laptop got ada's pinned contacts from her first device.
	if got, want := laptop.config(t).Contacts, ada.config(t).Contacts; len(got) != 1 || !slices.Equal(got["bob"].Keys, want["bob"].Keys) {
		t.Fatalf("the linked device pins %+v, want %+v", got, want)
	}
	l := list(laptop)
	if len(l) != 2 {
		t.Fatalf("devices after the link: %q", l)
	}
	for _, d := range l {
		if (d[1] == id) != (d[4] != "") {
			t.Errorf("device %s: this-device mark wrong in %q", d[1], l)
		}
	}

	// A wrong code: the link fails and nothing is added.
	add = ada.start(t, "devices", "add")
	code = add.expect(`^device code: (\S+)$`)[1]
	wrong := code[:5] + "0000-0000"
	if wrong == code {
		wrong = code[:5] + "1111-1111"
	}
	phone := newCLIUser(t, "ada")
	if out, err := phone.try(t, "login", srv.URL, "--user", "ada", "--code", wrong); err == nil || !strings.Contains(out, "code does not match") {
		t.Fatalf("login with a wrong device code: %v %q", err, out)
	}
	add.kill()
	if l := list(ada); len(l) != 2 {
		t.Fatalf("devices after a failed link: %q", l)
	}

	// Remove the laptop: its next connection is refused.
	if out := ada.run(t, "devices", "remove", id); out != "device removed: "+id+"\n" {
		t.Fatalf("devices remove printed %q", out)
	}
	if l := list(ada); len(l) != 1 {
		t.Fatalf("devices after remove: %q", l)
	}
	out, err := laptop.try(t, "contacts")
	if err == nil || !strings.Contains(out, "no longer in account ada") {
		t.Fatalf("a removed device connects: %v %q", err, out)
	}
}

// TestMessengerCLISession: the whole flow with no code or password typed:
// ada asks bob, bob accepts in assist requests, and bob's RFB port shows
// ada's desktop pixel-exactly; both were marked busy meanwhile.
func TestMessengerCLISession(t *testing.T) {
	e2e(t)
	d := newDesktop(t)
	srv := startServe(t, t.TempDir())
	ada, bob, carol := newCLIUser(t, "ada"), newCLIUser(t, "bob"), newCLIUser(t, "carol")
	for _, u := range []*cliUser{ada, bob, carol} {
		u.login(t, srv)
	}
	pairCLI(t, ada, bob)
	pairCLI(t, carol, ada)
	watch := carol.start(t, "contacts", "--watch")
	watch.expect(`^presence: ada offline$`)

	reqs := bob.start(t, "requests", "--no-browser")
	ask := ada.start(t, "ask", "bob", "--display", d.Display, "--no-page", "--allow", "view")
	ask.expect(`^asked: bob$`)
	watch.expect(`^presence: ada online$`)
	id := reqs.expect(`^request: (\S+) from ada$`)[1]
	reqs.send("accept " + id)
	ask.expect(`^accepted by bob$`)
	watch.expect(`^presence: ada busy$`)
	reqs.expect(`^path: \S+$`)
	rfbAddr := reqs.expect(`^rfb on (\S+)$`)[1]
	lab.WaitMatch(t, d.X, lab.DialRFB(t, rfbAddr).Screen, 0, matchTimeout)
	if strings.Contains(reqs.stderr.String(), "password") {
		t.Errorf("the expert's side asked for a password: %s", reqs.stderr)
	}
	// bob leaves: ada's side ends with its session and she goes offline.
	reqs.interrupt()
	if err := ask.wait(); err != nil {
		t.Errorf("ada's ask after the session: %v; stderr: %s", err, ask.stderr)
	}
	watch.expect(`^presence: ada offline$`)
}

// TestMessengerCLIOfferSession: bob offers help, ada accepts in her
// requests from a script, and answers the consent question on the same
// stdin: the lines after "accept ID" reach her session's question.
func TestMessengerCLIOfferSession(t *testing.T) {
	e2e(t)
	d := newDesktop(t)
	srv := startServe(t, t.TempDir())
	ada, bob := newCLIUser(t, "ada"), newCLIUser(t, "bob")
	ada.login(t, srv, "--display-name", "Ada Lovelace")
	bob.login(t, srv, "--display-name", "Bob Expert")
	pairCLI(t, ada, bob)

	offer := bob.start(t, "offer", "ada", "--no-browser")
	offer.expect(`^asked: ada$`)
	reqs := ada.start(t, "requests", "--display", d.Display, "--no-page")
	id := reqs.expect(`^request: (\S+) from bob$`)[1]
	reqs.send("accept " + id)
	offer.expect(`^accepted by ada$`)
	// The question names bob as ada paired with him.
	reqs.expect(`Bob Expert wants to see your screen\. Allow\? \[y/N\]`)
	reqs.send("y")
	rfbAddr := offer.expect(`^rfb on (\S+)$`)[1]
	lab.WaitMatch(t, d.X, lab.DialRFB(t, rfbAddr).Screen, 0, matchTimeout)
	offer.interrupt()
	if err := reqs.wait(); err != nil {
		t.Errorf("ada's requests after the session: %v; stderr: %s", err, reqs.stderr)
	}
}

// TestMessengerCLIRequestsTerminal: on a terminal (a pty from script(1)),
// assist requests asks "Accept? [y/N]" per request; Enter declines, "y"
// accepts.
func TestMessengerCLIRequestsTerminal(t *testing.T) {
	lab.Need(t, "script")
	srv := startServe(t, t.TempDir())
	ada, bob := newCLIUser(t, "ada"), newCLIUser(t, "bob")
	ada.login(t, srv, "--display-name", "Ada Lovelace")
	bob.login(t, srv)
	pairCLI(t, ada, bob)
	reqs := bob.startOnTerminal(t, "requests", "--no-browser")
	const question = "Ada Lovelace asks for your help. Accept? [y/N] "

	ask := ada.start(t, "ask", "bob")
	ask.expect(`^asked: bob$`)
	reqs.expect(`request: \S+ from ada`)
	// The question has no newline: it shows on the line of what follows.
	// The terminal keeps what the test types until the command reads it.
	reqs.send("") // Enter: no
	if l := reqs.expect(`declined: \S+`)[0]; !strings.Contains(reqs.seen(), question) {
		t.Fatalf("no question %q before %q; output: %q", question, l, reqs.seen())
	}
	ask.expect(`^declined by bob$`)

	ask = ada.start(t, "ask", "bob")
	ask.expect(`^asked: bob$`)
	reqs.expect(`request: \S+ from ada`)
	reqs.send("y")
	reqs.expect(`accepted: \S+ from ada`)
	ask.expect(`^accepted by bob$`)
	if n := strings.Count(reqs.seen(), question); n != 2 {
		t.Errorf("the question was asked %d times, want 2; output: %q", n, reqs.seen())
	}
}

// TestMessengerCLIWatchServerRestart: assist contacts --watch, assist
// requests and a waiting assist ask outlive a restart of their server
// (status 1001, as a draining node of several says): they connect again by
// themselves, the watch prints every state again, ask asks again and
// requests takes it, instead of all three ending with "the connection to
// the server ended".
func TestMessengerCLIWatchServerRestart(t *testing.T) {
	data := t.TempDir()
	srv := startServe(t, data)
	ada, bob := newCLIUser(t, "ada"), newCLIUser(t, "bob")
	ada.login(t, srv)
	bob.login(t, srv)
	pairCLI(t, ada, bob)
	bobWatch := bob.start(t, "contacts", "--watch")
	bobWatch.expect(`^presence: ada offline$`)
	watch := ada.start(t, "contacts", "--watch")
	watch.expect(`^presence: bob online$`)
	bobWatch.expect(`^presence: ada online$`)
	reqs := bob.start(t, "requests", "--no-browser")
	ask := ada.start(t, "ask", "bob")
	ask.expect(`^asked: bob$`)
	first := reqs.expect(`^request: (\S+) from ada$`)[1]

	srv.stop(t)
	// The same address, data and certificate: the saved pin still holds.
	srv2 := startServe(t, data, "--listen", strings.TrimPrefix(srv.URL, "https://"))
	if srv2.URL != srv.URL {
		t.Fatalf("restarted server on %s, want %s", srv2.URL, srv.URL)
	}
	// Both watches connect again: each prints the list again, then bob's
	// comes back online for ada (either in the list or as a change).
	bobWatch.expect(`^presence: ada online$`)
	watch.expect(`^presence: bob online$`)
	if !strings.Contains(watch.stderr.String(), "connecting again") {
		t.Errorf("ada's watch said nothing of connecting again; stderr: %s", watch.stderr)
	}

	// ada's ask, whose request the server withdrew with its connection,
	// asks again; bob's requests, connected again, takes the new request.
	id := reqs.expect(`^request: (\S+) from ada$`)[1]
	if id == first {
		t.Fatalf("bob's requests showed request %s again after connecting again", first)
	}
	reqs.send("decline " + id)
	reqs.expect(`^declined: ` + regexp.QuoteMeta(id) + `$`)
	ask.expect(`^declined by bob$`)
}
