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
	"strconv"
	"strings"
	"time"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/filetransfer"
	"github.com/assist-project/assist/identity"
	"github.com/assist-project/assist/internal/logfile"
	"github.com/assist-project/assist/messenger"
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

// openAgentAuditLog opens the agent's audit log in its own directory,
// signed with the machine's key (the one it logs in with).
func openAgentAuditLog(dir string) (*audit.FileLog, error) {
	id, err := identity.Open(dir)
	if err != nil {
		return nil, err
	}
	key, err := id.DeviceKey()
	if err != nil {
		return nil, err
	}
	return audit.OpenFile(dir, key)
}

// uploadChunk bounds the JSONL of one audit-upload message, below the
// messenger's message size.
const uploadChunk = 40 << 10

// uploadAudit sends the server what log holds after the server's last
// entry of it, in messages of at most uploadChunk bytes, the signed head
// with the last. It returns the last entry the server holds.
func uploadAudit(ctx context.Context, c *messenger.Client, log *audit.FileLog) (uint64, error) {
	seq, err := c.AuditUpload(ctx, "")
	if err != nil {
		return 0, err
	}
	for {
		es, head, err := log.Since(seq)
		if err != nil {
			return seq, err
		}
		if len(es) == 0 {
			return seq, nil
		}
		var chunk, line bytes.Buffer
		n := 0
		for n < len(es) {
			line.Reset()
			audit.WriteUpload(&line, es[n:n+1], nil)
			if n > 0 && chunk.Len()+line.Len() > uploadChunk-4096 { // room for the head
				break
			}
			chunk.Write(line.Bytes())
			n++
		}
		if n == len(es) && head != nil {
			audit.WriteUpload(&chunk, nil, head)
		}
		got, err := c.AuditUpload(ctx, chunk.String())
		if err != nil {
			return seq, err
		}
		if got <= seq {
			return got, fmt.Errorf("the server stored nothing past entry %d", seq)
		}
		seq = got
	}
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
	org := flags.String("org", "", "an organisation's audit trail on its server, for its admins (with the account this device logged in to): search it, or verify every chain the server keeps of it")
	since := flags.String("since", "", "--org: only entries from this long ago (7d, 12h) or this date (2006-01-02)")
	text := flags.String("text", "", "--org: only entries whose novice, expert or machine contains this")
	keepDays := flags.Int("keep-days", 0, "prune: keep the entries of this many days, remove older ones (a signed cut keeps the rest verifiable)")
	positional, err := parseInterspersed(flags, args)
	if err != nil {
		return err
	}
	if len(positional) > 1 || (*asJSON && *asCSV) || (prune && *keepDays <= 0) {
		fmt.Fprintln(os.Stderr, "usage: assist audit [--json|--csv] [FILE] | assist audit verify [FILE] [--key sha256:HEX] [--head FILE] | assist audit prune --keep-days N | assist audit [verify] --org ORG [--since D] [--text S] [--csv|--json]")
		return errUsage
	}
	if *org != "" {
		if prune || keygen || len(positional) > 0 {
			fmt.Fprintln(os.Stderr, "usage: assist audit --org ORG [--since D] [--text S] [--csv|--json] | assist audit verify --org ORG")
			return errUsage
		}
		if verify {
			return verifyOrgAudit(ctx, stdout, *org)
		}
		from, err := parseSince(*since, time.Now())
		if err != nil {
			return err
		}
		format := ""
		if *asJSON {
			format = "json"
		} else if *asCSV {
			format = "csv"
		}
		return searchOrgAudit(ctx, stdout, *org, from, *text, format)
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

// parseSince reads --since: "" (everything), a number of days (7d), a
// duration (12h) or a date (2006-01-02, local time).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: a number of days (7d), a duration (12h) or a date (2006-01-02)", s)
}

// orgAuditError explains the server's refusal of an audit request.
func orgAuditError(org string, err error) error {
	if messenger.IsCode(err, messenger.CodeUnauthorized) {
		return fmt.Errorf("you are not an admin of %s on this server: its admins search and verify its audit trail (assist org add %s YOU --role admin, on the server)", org, org)
	}
	return err
}

// searchOrgAudit prints an organisation's audit trail as the server
// holds it: every page of the search, in plain words, CSV or JSON.
func searchOrgAudit(ctx context.Context, stdout io.Writer, org string, since time.Time, text, format string) error {
	_, c, err := connectAccount(ctx, "")
	if err != nil {
		return err
	}
	defer c.Close()
	var entries []audit.Entry
	for {
		page, more, err := c.AuditSearch(ctx, org, since, text, len(entries))
		if err != nil {
			return orgAuditError(org, err)
		}
		es, err := audit.ReadAll(strings.NewReader(page))
		if err != nil {
			return fmt.Errorf("the server sent a damaged entry: %w", err)
		}
		entries = append(entries, es...)
		if !more || len(es) == 0 {
			break
		}
	}
	switch format {
	case "json":
		return audit.WriteJSON(stdout, entries)
	case "csv":
		return audit.WriteCSV(stdout, entries)
	}
	if len(entries) == 0 {
		fmt.Fprintf(stdout, "No entries in %s's audit trail match.\n", org)
		return nil
	}
	printOrgHistory(stdout, entries)
	return nil
}

// printOrgHistory prints entries of several chains in plain words, each
// with whose chain it is (party and key fingerprint).
func printOrgHistory(w io.Writer, entries []audit.Entry) {
	for _, e := range entries {
		fmt.Fprintf(w, "%s  [%s %s #%d]  %s\n", e.Time.Local().Format("Mon 2 Jan 2006 15:04:05"), e.Party,
			identity.Fingerprint(e.Key), e.Seq, e.Words())
	}
}

// verifyOrgAudit asks the server to verify every chain it keeps of org
// and prints the verdicts; any bad chain is an error (exit code 1).
func verifyOrgAudit(ctx context.Context, stdout io.Writer, org string) error {
	_, c, err := connectAccount(ctx, "")
	if err != nil {
		return err
	}
	defer c.Close()
	chains, err := c.AuditVerify(ctx, org)
	if err != nil {
		return orgAuditError(org, err)
	}
	bad := 0
	for _, ch := range chains {
		who := "the server"
		if ch.User != "" {
			who = ch.User
		}
		fp := identity.Fingerprint(ed25519.PublicKey(ch.Key))
		if ch.Bad != "" {
			bad++
			fmt.Fprintf(stdout, "bad: %s (%s): %s\n", who, fp, ch.Bad)
			continue
		}
		what := fmt.Sprintf("%d entries (%d to %d)", ch.Entries, ch.First, ch.Last)
		if ch.Entries == 0 {
			what = "no entries"
		}
		if ch.Pruned > 0 {
			what += fmt.Sprintf(", %d older ones removed by retention", ch.Pruned)
		}
		if ch.HeadChecked {
			what += ", up to its signed head"
		}
		fmt.Fprintf(stdout, "ok: %s (%s): %s\n", who, fp, what)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d audit chains of %s do not verify: the entries named above were changed or removed on the server", bad, len(chains), org)
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
