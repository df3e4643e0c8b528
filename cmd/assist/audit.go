package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/filetransfer"
	"github.com/assist-project/assist/identity"
	"github.com/assist-project/assist/internal/logfile"
	"github.com/assist-project/assist/session"
)

// openAuditLog opens this machine's audit log (audit.jsonl in the state
// directory), signed with the device key. A session goes on without it:
// the caller warns and records nothing.
func openAuditLog() (*audit.FileLog, error) {
	dir, err := logfile.StateDir()
	if err != nil {
		return nil, err
	}
	id, err := identity.Open("")
	if err != nil {
		return nil, err
	}
	key, err := id.DeviceKey()
	if err != nil {
		return nil, err
	}
	return audit.OpenFile(dir, key)
}

// sessionRecorder starts recording one session for party, or returns a
// Recorder that records nothing when the log could not be opened (warned
// about once per process, here).
func sessionRecorder(log *audit.FileLog, party audit.Party) *audit.Recorder {
	if log == nil {
		return audit.NewRecorder(nil, party, slog.Default())
	}
	return audit.NewRecorder(log, party, slog.Default())
}

// auditLogOrWarn opens the audit log, or says why there is none.
func auditLogOrWarn(stderr io.Writer) *audit.FileLog {
	l, err := openAuditLog()
	if err != nil {
		fmt.Fprintf(stderr, "note: this session is not recorded in your audit log (%v)\n", err)
		return nil
	}
	return l
}

// noviceConsentAudit records a consent transition, and the end.
func noviceConsentAudit(r *audit.Recorder, ev session.Event) {
	r.Consent(string(ev.Action), ev.From.String(), ev.To.String(), ev.Rights.String(), ev.Reason, ev.Auto)
	if ev.To == session.Ended {
		r.End(ev.Reason)
	}
}

// expertStateAudit records a state the novice reported, and the end.
func expertStateAudit(r *audit.Recorder, ev session.ExpertEvent) {
	r.Rights(ev.State.String(), ev.Rights.String(), ev.Reason)
	if ev.State == session.Ended {
		r.End(ev.Reason)
	}
}

// fileAudit records a transfer that ended; novice says which end this is.
func fileAudit(r *audit.Recorder, novice bool, ev filetransfer.Event) {
	dir := audit.ToExpert
	if ev.Incoming == novice {
		dir = audit.ToNovice
	}
	r.File(audit.File{Direction: dir, Name: ev.Name, Size: ev.Size, SHA256: ev.SHA256, Result: string(ev.State)}, ev.Reason)
}

func runAudit(ctx context.Context, args []string, stdout io.Writer) error {
	verify := len(args) > 0 && args[0] == "verify"
	prune := len(args) > 0 && args[0] == "prune"
	keygen := len(args) > 0 && args[0] == "keygen"
	if verify || prune || keygen {
		args = args[1:]
	}
	flags := newFlagSet("audit", os.Stderr)
	asJSON := flags.Bool("json", false, "export the entries as JSON")
	asCSV := flags.Bool("csv", false, "export the entries as CSV (cells a spreadsheet would run are neutralised)")
	keyFP := flags.String("key", "", "verify: the fingerprint (sha256:HEX) the entries must be signed with; default this device's key for this machine's log")
	headFile := flags.String("head", "", "verify: the signed head to check the log's end against (default: the .head file beside it)")
	keepDays := flags.Int("keep-days", 0, "prune: keep the entries of this many days, remove older ones (a signed cut keeps the rest verifiable)")
	positional, err := parseInterspersed(flags, args)
	if err != nil {
		return err
	}
	if len(positional) > 1 || (*asJSON && *asCSV) || (prune && *keepDays <= 0) {
		fmt.Fprintln(os.Stderr, "usage: assist audit [--json|--csv] [FILE] | assist audit verify [FILE] [--key sha256:HEX] [--head FILE] | assist audit prune --keep-days N")
		return errUsage
	}
	if keygen {
		if len(positional) != 1 {
			fmt.Fprintln(os.Stderr, "usage: assist audit keygen FILE")
			return errUsage
		}
		return auditKeygen(stdout, positional[0])
	}
	path, own := "", true
	if len(positional) == 1 {
		path, own = positional[0], false
	} else {
		dir, err := logfile.StateDir()
		if err != nil {
			return err
		}
		path = dir + string(os.PathSeparator) + audit.LogName
	}
	if prune {
		l, err := openAuditLog()
		if err != nil {
			return err
		}
		n, err := l.Prune(time.Now().AddDate(0, 0, -*keepDays))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pruned: %d entries older than %d days\n", n, *keepDays)
		return nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && own {
		if verify || *asJSON || *asCSV {
			return fmt.Errorf("no audit log at %s yet: it is written once this computer takes part in a session", path)
		}
		fmt.Fprintln(stdout, "No sessions recorded on this computer yet.")
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the audit log: %w", err)
	}
	if verify {
		return verifyAudit(stdout, path, data, own, *keyFP, *headFile)
	}
	entries, rerr := audit.ReadAll(bytes.NewReader(data))
	switch {
	case *asJSON:
		if err := audit.WriteJSON(stdout, entries); err != nil {
			return err
		}
	case *asCSV:
		if err := audit.WriteCSV(stdout, entries); err != nil {
			return err
		}
	default:
		printHistory(stdout, entries)
	}
	if rerr != nil {
		return fmt.Errorf("the log has a damaged line after the entries shown: %w; run assist audit verify", rerr)
	}
	return nil
}

// printHistory prints entries in plain words, in local time, a blank
// line between sessions.
func printHistory(w io.Writer, entries []audit.Entry) {
	session := ""
	for i, e := range entries {
		if e.Session != session && i > 0 {
			fmt.Fprintln(w)
		}
		session = e.Session
		fmt.Fprintf(w, "%s  %s\n", e.Time.Local().Format("Mon 2 Jan 2006 15:04:05"), e.Words())
	}
}

// verifyAudit checks the chain in data and says so; a bad chain is an
// error naming the first bad entry (exit code 1).
func verifyAudit(stdout io.Writer, path string, data []byte, own bool, keyFP, headFile string) error {
	var opts audit.VerifyOptions
	if own && keyFP == "" {
		id, err := identity.Open("")
		if err != nil {
			return err
		}
		key, err := id.DeviceKey()
		if err != nil {
			return err
		}
		opts.Key = key.Public().(ed25519.PublicKey)
	}
	if headFile == "" {
		headFile = audit.HeadPath(path)
	}
	hb, err := os.ReadFile(headFile)
	switch {
	case err == nil:
		h, err := audit.ParseHead(bytes.TrimSpace(hb))
		if err != nil {
			return fmt.Errorf("the head %s is damaged: %w", headFile, err)
		}
		opts.Head = &h
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(stdout, "note: no signed head at %s: entries removed from the end would not show\n", headFile)
	default:
		return err
	}
	rep, err := audit.VerifyReader(bytes.NewReader(data), opts)
	if err == nil && keyFP != "" && !strings.EqualFold(rep.Fingerprint(), keyFP) {
		return fmt.Errorf("the log verifies but is signed by %s, not %s: it is not the log you expected", rep.Fingerprint(), keyFP)
	}
	if err != nil {
		var bad *audit.BadEntry
		if errors.As(err, &bad) {
			return fmt.Errorf("%s does not verify: %s", path, strings.TrimPrefix(bad.Error(), "audit: "))
		}
		return err
	}
	what := fmt.Sprintf("%d entries (%d to %d)", rep.Entries, rep.First, rep.Last)
	if rep.Pruned > 0 {
		what += fmt.Sprintf(", %d older ones removed by retention", rep.Pruned)
	}
	if rep.Entries == 0 {
		what = "no entries"
	}
	fmt.Fprintf(stdout, "ok: %s, signed by %s", what, rep.Fingerprint())
	if rep.HeadChecked {
		fmt.Fprint(stdout, ", up to its signed head")
	}
	fmt.Fprintln(stdout)
	return nil
}
