// Command assist is remote assistance: a novice shares their desktop, an
// expert sees it and, with the novice's consent, controls it.
//
// Usage:
//
//	assist invite [--file PATH] [--expires 1h] [--password-file F] [--name NAME] [--listen ADDR] [--no-portmap] [--allow ask|view|control] [--display :N] [--no-page] [--server URL [--server-fingerprint sha256:HEX]]
//	assist join FILE|LINK|CODE [--password-file F] [--server URL [--server-fingerprint sha256:HEX]] [--rfb 127.0.0.1:PORT] [--no-browser] [--request-control]
//	assist vnc [--display :N] [--listen 127.0.0.1:5900] [--view-only]
//	assist login https://SERVER [--user NAME] [--display-name "Full Name"] [--server-fingerprint sha256:HEX] [--code CODE]
//	assist contacts [--watch] | invite | add CODE | remove NAME | block NAME | unblock NAME
//	assist devices | add | remove ID
//	assist ask NAME | assist offer NAME | assist requests
//	assist [app [--no-browser] [--display :N]]   (the novice's app in the browser)
//	assist install-desktop [--uninstall]         (the desktop launcher and assist:// links)
//	assist audit [--json|--csv] [FILE] | verify [FILE] | prune --keep-days N | keygen FILE
//	assist replay FILE --identity KEYFILE [--listen 127.0.0.1:PORT] [--browser]
//
// Run "assist help" for details.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/assist-project/assist/internal/dialhint"
	"github.com/assist-project/assist/internal/logfile"
)

// command is one subcommand of assist.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout io.Writer) error
	logs    logMode
}

// logMode says where a command's log lines go by default.
type logMode int

const (
	// logFile: to the log file, silently (quick commands that print a
	// listing and exit).
	logFile logMode = iota
	// logFileShown: to the log file, whose path is printed once at the
	// start (the session commands a person watches).
	logFileShown
	// logStderr: to stderr, as services and tools run under a service
	// manager or by an administrator expect.
	logStderr
)

var commands = []command{
	{"app", "the novice's app in the browser: Get help, your contacts, the session (also: assist with no arguments)", runApp, logFileShown},
	{"invite", "invite an expert to see (and, if you allow, control) this desktop", runInvite, logFileShown},
	{"join", "join a novice's desktop with an invitation", runJoin, logFileShown},
	{"vnc", "serve this desktop over RFB on a loopback port, for local VNC viewers and tunnels", runVNC, logStderr},
	{"serve", "run the rendezvous server: signalling, STUN/TURN relay, web app", runServe, logStderr},
	{"login", "log this device in to a server (creates the account, or adds this device with --code)", runLogin, logFile},
	{"contacts", "list contacts and their presence; invite, add, remove, block, unblock", runContacts, logFile},
	{"devices", "list, add or remove this account's devices", runDevices, logFile},
	{"ask", "ask a contact for help; on accept they see this desktop as with assist invite", runAsk, logFileShown},
	{"offer", "offer help to a contact; on accept you join them as with assist join", runOffer, logFileShown},
	{"requests", "show requests from contacts and accept or decline them", runRequests, logFileShown},
	{"agent", "on an organisation's machine: enrol it, then wait for offers of help and ask its user", runAgent, logFileShown},
	{"org", "on the server's host: create organisations, name their admins, helpers and members, make enrolment tokens, set the policy, point it at its company sign-in (OpenID Connect) and link helpers' company accounts", runOrg, logFile},
	{"audit", "this computer's history of sessions; verify or export its signed audit log", runAudit, logFile},
	{"recordings", "an organisation's session recordings on its server, for its admins: list them, or download one to replay", runRecordings, logFile},
	{"replay", "play a session recording to a local VNC viewer or in your browser (needs the audit key's identity)", runReplay, logFileShown},
	{"version", "print the version of assist", runVersion, logStderr},
	{"install-desktop", "add Assist to the desktop's applications menu and let it open assist:// links", runInstallDesktop, logFile},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	args, verbose := cutVerbose(args)
	switch {
	case len(args) == 0:
		// The novice's app: what a person who just wants help starts.
		args = []string{"app"}
	case len(args) == 1 && strings.HasPrefix(strings.ToLower(args[0]), "assist:"):
		// A link opened by the desktop (the assist:// handler) or
		// pasted: the expert joins.
		args = []string{"join", args[0]}
	case args[0] == "help" || args[0] == "-h" || args[0] == "--help":
		usage(stderr)
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args[0] = "version"
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		// Log lines go through logOut, which a console in raw mode
		// switches to \r\n so that --verbose does not staircase.
		log := logfile.Open(logfile.Options{Verbose: verbose, ToStderr: c.logs == logStderr, Stderr: logOut{stderr}})
		defer log.Close()
		slog.SetDefault(log.Logger)
		if log.Err != nil {
			fmt.Fprintf(stderr, "assist: %v; warnings go here instead\n", log.Err)
		} else if c.logs == logFileShown && log.Path != "" && !asksHelp(args[1:]) {
			fmt.Fprintf(stderr, "Details for a helper are written to %s (add --verbose to see them here).\n", log.Path)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, args[1:], stdout)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			if log.Path != "" {
				slog.Error("command failed", "command", c.name, "err", err)
			}
			if hint, cause, ok := dialhint.Hint(err); ok {
				// What to do first; what happened below it.
				fmt.Fprintf(stderr, "assist %s: %s\n  (%v)\n", c.name, hint, cause)
				return 1
			}
			fmt.Fprintf(stderr, "assist %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "assist: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

// errUsage is returned after a command printed its own usage error.
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: assist COMMAND [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun \"assist COMMAND --help\" for a command's arguments, flags and examples.")
	fmt.Fprintln(w, "\nflags for every command:")
	fmt.Fprintln(w, "  --verbose   write the log to the terminal (stderr) instead of the log file")
	fmt.Fprintln(w, "  --version   print the version (as \"assist version\")")
	fmt.Fprintln(w, "\nThe log file is "+logPathForHelp()+"; ASSIST_LOG=debug (or info, warn, error) sends the log to stderr at that level.")
}

// logPathForHelp is the log file's path as the help shows it.
func logPathForHelp() string {
	dir, err := logfile.StateDir()
	if err != nil {
		return "assist.log in $XDG_STATE_HOME/assist (~/.local/state/assist)"
	}
	return filepath.Join(dir, logfile.Name)
}

// cutVerbose takes --verbose (or -verbose, -v) out of args wherever it
// stands before a "--", so every command has it without declaring it.
func cutVerbose(args []string) ([]string, bool) {
	out := make([]string, 0, len(args))
	verbose := false
	for i, a := range args {
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		if a == "--verbose" || a == "-verbose" || a == "-v" {
			verbose = true
			continue
		}
		out = append(out, a)
	}
	return out, verbose
}

// asksHelp reports whether args ask for a command's help.
func asksHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help":
			return true
		case "--":
			return false
		}
	}
	return false
}

// rawTerminal is set while a console holds the terminal in raw mode,
// where a bare \n moves down without going back to the first column.
var rawTerminal atomic.Bool

// logOut is stderr for log lines: \n becomes \r\n while the terminal is
// raw, so --verbose lines start at the left edge instead of a staircase.
type logOut struct{ w io.Writer }

func (l logOut) Write(p []byte) (int, error) {
	if rawTerminal.Load() {
		return crlfWriter(l).Write(p)
	}
	return l.w.Write(p)
}

// newFlagSet returns a flag set that reports errors the way assist does.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("assist "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if h, ok := helps[name]; ok {
		setHelp(fs, h)
	}
	return fs
}

// parseFlags parses args, mapping flag errors to errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	return nil
}

// parseInterspersed parses flags that may come before or after the
// positional arguments ("assist join FILE --no-browser"), which the flag
// package alone does not allow.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// serverOptions are the --server flags of invite and join.
type serverOptions struct {
	url, fingerprint *string
}

// addServerFlags adds --server and --server-fingerprint, which default to
// $ASSIST_SERVER and $ASSIST_SERVER_FINGERPRINT.
func addServerFlags(fs *flag.FlagSet) serverOptions {
	return serverOptions{
		url:         fs.String("server", os.Getenv("ASSIST_SERVER"), "rendezvous server (https://HOST:PORT, as assist serve prints); default $ASSIST_SERVER"),
		fingerprint: fs.String("server-fingerprint", os.Getenv("ASSIST_SERVER_FINGERPRINT"), "accept only the server certificate with this fingerprint (sha256:HEX, as assist serve prints); default $ASSIST_SERVER_FINGERPRINT, else the system's certificate authorities"),
	}
}
