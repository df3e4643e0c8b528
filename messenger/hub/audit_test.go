package hub_test

// The audit trail's server side: uploads of the devices' chains (their
// own only, forks refused), the server's own entries of offers, search
// and verification by an organisation's admins only, scoped to it, and
// retention.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
)

// auditWorld is newOrgWorld with an audit key, and retention applied
// every sweep.
func auditWorld(t *testing.T) *orgWorld {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	return newOrgWorld(t, func(c *hub.Config) {
		c.AuditKey = key
		c.AuditPruneEvery = time.Millisecond
		c.SweepEvery = 5 * time.Millisecond
	})
}

// logOf records one session in a fresh log signed with key.
func logOf(t *testing.T, key ed25519.PrivateKey, novice, expert, machine string) *audit.FileLog {
	t.Helper()
	l, err := audit.OpenFile(t.TempDir(), key)
	if err != nil {
		t.Fatal(err)
	}
	r := audit.NewRecorder(l, audit.PartyNovice, nil)
	r.Start(novice, expert, machine, "relay-udp")
	r.Consent("allow-view", "asked", "viewing", "view", "", false)
	r.End("the helper left")
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return l
}

// upload sends what l holds after the server's last entry.
func upload(t *testing.T, u *user, l *audit.FileLog) (uint64, error) {
	t.Helper()
	ctx := ctxT(t)
	seq, err := u.AuditUpload(ctx, "")
	if err != nil {
		return 0, err
	}
	es, head, err := l.Since(seq)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := audit.WriteUpload(&b, es, head); err != nil {
		t.Fatal(err)
	}
	return u.AuditUpload(ctx, b.String())
}

func search(t *testing.T, u *user, org, text string) ([]audit.Entry, error) {
	t.Helper()
	var out []audit.Entry
	for off := 0; ; {
		page, more, err := u.AuditSearch(ctxT(t), org, time.Time{}, text, off)
		if err != nil {
			return nil, err
		}
		es, err := audit.ReadAll(strings.NewReader(page))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, es...)
		off += len(es)
		if !more {
			return out, nil
		}
	}
}

func TestAuditUploadSearchVerify(t *testing.T) {
	w := auditWorld(t)
	ctx := ctxT(t)

	// An accepted offer and a declined one: the server's own entries.
	asked, err := w.dana.Ask(ctx, "pc-1", messenger.KindOffer)
	if err != nil {
		t.Fatal(err)
	}
	next(t, w.pc1, ofType(messenger.TypeRequest))
	if _, err := w.pc1.Answer(ctx, asked.Request, true); err != nil {
		t.Fatal(err)
	}
	asked, err = w.dana.Ask(ctx, "pc-2", messenger.KindOffer)
	if err != nil {
		t.Fatal(err)
	}
	next(t, w.pc2, ofType(messenger.TypeRequest))
	if _, err := w.pc2.Answer(ctx, asked.Request, false); err != nil {
		t.Fatal(err)
	}
	if _, err := w.gus.Ask(ctx, "gx-1", messenger.KindOffer); err != nil {
		t.Fatal(err)
	}

	// The machine's, the helper's and another organisation's chains.
	pcLog := logOf(t, w.pc1.key, "Mel M", "dana", "pc-1")
	if seq, err := upload(t, w.pc1, pcLog); err != nil || seq != 3 {
		t.Fatalf("pc-1 uploads: %d, %v", seq, err)
	}
	if seq, err := upload(t, w.pc1, pcLog); err != nil || seq != 3 {
		t.Fatalf("pc-1 uploads nothing new: %d, %v", seq, err)
	}
	// dana's log: a session on acme's pc-1, then one with a contact,
	// which acme's admin must not see.
	danaLog := logOf(t, w.dana.key, "Mel M", "dana", "pc-1")
	r := audit.NewRecorder(danaLog, audit.PartyExpert, nil)
	r.Start("Bob", "dana", "", "direct")
	r.End("over")
	if _, err := upload(t, w.dana, danaLog); err != nil {
		t.Fatalf("dana uploads: %v", err)
	}
	if _, err := upload(t, w.gx1, logOf(t, w.gx1.key, "Gil", "gus", "gx-1")); err != nil {
		t.Fatalf("gx-1 uploads: %v", err)
	}
	// Members and outsiders keep no trail here.
	for _, u := range []*user{w.mel, w.olga} {
		_, err := upload(t, u, logOf(t, u.key, "x", "y", "z"))
		isCode(t, err, messenger.CodeUnauthorized)
	}
	// Someone else's chain is refused: only the logged-in device's own.
	if _, err := upload(t, w.pc2, logOf(t, w.dana.key, "a", "b", "c")); !messenger.IsCode(err, messenger.CodeInvalid) || !strings.Contains(err.Error(), "not signed by this device's key") {
		t.Fatalf("pc-2 uploads dana's chain: %v", err)
	}
	// A rewritten history is a fork: refused, and the stored chain stays.
	forged := logOf(t, w.pc1.key, "Mel M", "nobody", "pc-1")
	es, head, _ := forged.Since(0)
	var b bytes.Buffer
	audit.WriteUpload(&b, es, head)
	if _, err := w.pc1.AuditUpload(ctx, b.String()); !messenger.IsCode(err, messenger.CodeInvalid) || !strings.Contains(err.Error(), "contradicts what this server stored") {
		t.Fatalf("a forked chain: %v", err)
	}
	// A tampered upload is refused too.
	tampered := strings.Replace(b.String(), `"expert":"nobody"`, `"expert":"eve"`, 1)
	if _, err := w.pc2.AuditUpload(ctx, tampered); !messenger.IsCode(err, messenger.CodeInvalid) {
		t.Fatalf("a tampered upload: %v", err)
	}

	// Only acme's admin searches acme, and sees acme only.
	for _, c := range []struct {
		who *user
		org string
	}{{w.dana, "acme"}, {w.mel, "acme"}, {w.gus, "acme"}, {w.olga, "acme"}, {w.pc1, "acme"}, {w.ann, "globex"}, {w.ann, "nope"}} {
		_, err := search(t, c.who, c.org, "")
		isCode(t, err, messenger.CodeUnauthorized)
		_, err = c.who.AuditVerify(ctx, c.org)
		isCode(t, err, messenger.CodeUnauthorized)
	}
	found, err := search(t, w.ann, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	parties := map[audit.Party]int{}
	var words []string
	for _, e := range found {
		parties[e.Party]++
		words = append(words, e.Words())
		if e.Machine == "gx-1" || e.Expert == "gus" {
			t.Errorf("acme's admin sees globex's %q", e.Words())
		}
		if e.Novice == "Bob" {
			t.Errorf("acme's admin sees dana's session with a contact: %q", e.Words())
		}
	}
	// pc-1 and dana: 3 each (both recorded as the novice's chain here);
	// the server: offered, accepted, paired, offered, declined.
	if parties[audit.PartyNovice] != 6 || parties[audit.PartyServer] != 5 {
		t.Errorf("acme's trail by party: %v\n%s", parties, strings.Join(words, "\n"))
	}
	all := strings.Join(words, "\n")
	for _, want := range []string{"server: dana offered help to Mel M on pc-1", "server: Mel M on pc-1 accepted dana's offer (answered by pc-1)",
		"dana started helping Mel M on pc-1 (paired by the server)", "server: Mo on pc-2 declined dana's offer"} {
		if !strings.Contains(all, want) {
			t.Errorf("acme's trail lacks %q:\n%s", want, all)
		}
	}
	if found, err := search(t, w.ann, "acme", "pc-2"); err != nil || len(found) != 2 {
		t.Errorf("search for pc-2: %d, %v", len(found), err)
	}

	chains, err := w.ann.AuditVerify(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(chains) != 3 || chains[0].User != "" || chains[0].Entries != 6 { // globex's offer too: the chain is whole
		t.Fatalf("verified: %+v", chains)
	}
	for _, c := range chains {
		if c.Bad != "" {
			t.Errorf("chain of %q: %s", c.User, c.Bad)
		}
	}

	// Retention: acme keeps a day; two days later its chains are cut,
	// and still verify. The server's own chain concerns globex too, which
	// keeps its entries for ever: it stays whole.
	if err := w.th.Store.SetRetention(ctx, "acme", 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	w.th.Clock.Add(48 * time.Hour)
	deadline := time.Now().Add(wait)
	for {
		found, err := search(t, w.ann, "acme", "pc-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(found) == 3 && found[0].Party == audit.PartyServer {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after retention acme's trail still holds %d entries", len(found))
		}
		time.Sleep(200 * time.Millisecond) // within the connection's message rate
	}
	chains, err = w.ann.AuditVerify(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chains {
		if c.Bad != "" || c.User != "" && c.Entries != 0 || c.User == "" && c.Pruned != 0 {
			t.Errorf("after retention, chain of %q: %+v", c.User, c)
		}
	}
}

// TestTokenNotAFlag: a token never starts with '-' (assist agent enroll
// took one for an unknown flag, one time in 64).
func TestTokenNotAFlag(t *testing.T) {
	for range 2000 {
		if tok := hub.NewToken(); tok[0] == '-' || !messenger.ValidToken(tok) {
			t.Fatalf("token %q", tok)
		}
	}
}
