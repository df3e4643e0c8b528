package hub_test

// Organisations: enrolment, the machines list and offers, with one test
// per role and message that an outsider, a member or another
// organisation's helper is refused.

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
)

// orgWorld is two organisations on one hub: acme (admin ann, helper dana,
// member mel, machines pc-1 and pc-2) and globex (helper gus, machine
// gx-1); and olga, in none.
type orgWorld struct {
	th                        *testHub
	ann, dana, mel, gus, olga *user
	pc1, pc2, gx1             *user
}

func (th *testHub) org(t *testing.T, name, display string, p messenger.Policy) {
	t.Helper()
	if err := th.Store.CreateOrg(ctxT(t), hub.Org{Name: name, Display: display, Policy: p, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func (th *testHub) role(t *testing.T, org, user, role string) {
	t.Helper()
	if err := th.Store.SetRole(ctxT(t), org, user, role); err != nil {
		t.Fatal(err)
	}
}

func (th *testHub) token(t *testing.T, org string, uses int, ttl time.Duration) string {
	t.Helper()
	tok := hub.NewToken()
	now := th.Clock.Now()
	if err := th.Store.AddToken(ctxT(t), org, hub.TokenHash(tok), uses, now.Add(ttl), now); err != nil {
		t.Fatal(err)
	}
	return tok
}

// enrol enrols a machine with a fresh key.
func (th *testHub) enrol(t *testing.T, token, id, name, who string) (*user, error) {
	t.Helper()
	k := newKey(t)
	c, w, err := th.dial(t, k, messenger.LoginOptions{User: id, DeviceName: name, Display: who, Token: token})
	if err != nil {
		return nil, err
	}
	if !w.Created || w.User != id {
		t.Fatalf("enrol %s: %+v", id, w)
	}
	return &user{name: id, key: k, Client: c}, nil
}

func newOrgWorld(t *testing.T, tweak ...func(*hub.Config)) *orgWorld {
	var tw func(*hub.Config)
	if len(tweak) > 0 {
		tw = tweak[0]
	}
	th := startHub(t, tw)
	th.org(t, "acme", "ACME IT", hub.DefaultPolicy())
	th.org(t, "globex", "Globex Help", messenger.Policy{Rights: []string{messenger.RightView}, Record: true, Timeout: 30})
	w := &orgWorld{th: th}
	for _, p := range []struct {
		u               **user
		name, org, role string
	}{{&w.ann, "ann", "acme", messenger.OrgAdmin}, {&w.dana, "dana", "acme", messenger.OrgHelper}, {&w.mel, "mel", "acme", messenger.OrgMember},
		{&w.gus, "gus", "globex", messenger.OrgHelper}, {&w.olga, "olga", "", ""}} {
		*p.u = th.login(t, p.name)
		if p.org != "" {
			th.role(t, p.org, p.name, p.role)
		}
	}
	tok := th.token(t, "acme", 2, time.Hour)
	var err error
	if w.pc1, err = th.enrol(t, tok, "pc-1", "<img src=x onerror=alert(1)>", "Mel M"); err != nil {
		t.Fatal(err)
	}
	if w.pc2, err = th.enrol(t, tok, "pc-2", "Front desk", "Mo"); err != nil {
		t.Fatal(err)
	}
	if w.gx1, err = th.enrol(t, th.token(t, "globex", 1, time.Hour), "gx-1", "GX", "Gil"); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestEnrol(t *testing.T) {
	w := newOrgWorld(t)
	th := w.th
	// The token had two uses: the third enrolment is refused, and costs
	// nothing else.
	tok := th.token(t, "acme", 1, time.Hour)
	if _, err := th.enrol(t, tok, "pc-1", "dup", "x"); !messenger.IsCode(err, messenger.CodeTaken) {
		t.Fatalf("taken name: %v", err)
	}
	if _, err := th.enrol(t, tok, "pc-3", "ok", "x"); err != nil {
		t.Fatalf("the token survives a taken name: %v", err)
	}
	if _, err := th.enrol(t, tok, "pc-4", "x", "x"); !messenger.IsCode(err, messenger.CodeNotFound) {
		t.Fatalf("used-up token: %v", err)
	}
	if _, err := th.enrol(t, hub.NewToken(), "pc-5", "x", "x"); !messenger.IsCode(err, messenger.CodeNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	old := th.token(t, "acme", 5, time.Minute)
	th.Clock.Add(2 * time.Minute)
	if _, err := th.enrol(t, old, "pc-6", "x", "x"); !messenger.IsCode(err, messenger.CodeNotFound) {
		t.Fatalf("expired token: %v", err)
	}
	// Two enrolments racing for a token's last use: exactly one wins.
	last := th.token(t, "acme", 1, time.Hour)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = th.enrol(t, last, []string{"race-a", "race-b"}[i], "r", "r")
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("racing enrolments: %v, %v", errs[0], errs[1])
	}
	// An enrolled machine logs in again by its key alone.
	if _, _, err := th.dial(t, w.pc1.key, messenger.LoginOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestMachinesByRole(t *testing.T) {
	w := newOrgWorld(t)
	for _, c := range []struct {
		who  *user
		want []string // machine accounts; nil: unauthorized
	}{
		{w.ann, []string{"pc-1", "pc-2"}},
		{w.dana, []string{"pc-1", "pc-2"}},
		{w.gus, []string{"gx-1"}},
		{w.mel, nil},
		{w.olga, nil},
		{w.pc1, nil},
	} {
		ms, err := c.who.Machines(ctxT(t))
		if c.want == nil {
			isCode(t, err, messenger.CodeUnauthorized)
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.who.name, err)
		}
		var got []string
		for _, m := range ms {
			got = append(got, m.User)
			if m.State != messenger.StateOnline {
				t.Errorf("%s sees %s %s", c.who.name, m.User, m.State)
			}
		}
		if len(got) != len(c.want) || got[0] != c.want[0] {
			t.Errorf("%s sees %v, want %v", c.who.name, got, c.want)
		}
	}
	ms, _ := w.dana.Machines(ctxT(t))
	if ms[0].Name != "<img src=x onerror=alert(1)>" || ms[0].Display != "Mel M" || ms[0].Org != "acme" {
		t.Errorf("machine as listed: %+v", ms[0])
	}
	w.pc2.Close()
	deadline := time.Now().Add(wait)
	for {
		ms, _ := w.dana.Machines(ctxT(t))
		if ms[1].State == messenger.StateOffline {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pc-2 still online after its agent left")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOfferByRole(t *testing.T) {
	w := newOrgWorld(t)
	ctx := ctxT(t)
	// Only the organisation's helpers and admins may offer, and only offer.
	for _, c := range []struct {
		who      *user
		to, kind string
	}{
		{w.mel, "pc-1", messenger.KindOffer},
		{w.olga, "pc-1", messenger.KindOffer},
		{w.gus, "pc-1", messenger.KindOffer},
		{w.dana, "gx-1", messenger.KindOffer},
		{w.dana, "pc-1", messenger.KindHelp},
		{w.pc1, "pc-2", messenger.KindOffer},
		{w.pc1, "dana", messenger.KindHelp},
	} {
		_, err := c.who.Ask(ctx, c.to, c.kind)
		isCode(t, err, messenger.CodeUnauthorized)
	}
	for _, helper := range []*user{w.dana, w.ann} {
		asked, err := helper.Ask(ctx, "pc-1", messenger.KindOffer)
		if err != nil {
			t.Fatalf("%s offers: %v", helper.name, err)
		}
		req := next(t, w.pc1, ofType(messenger.TypeRequest))
		if req.Request != asked.Request || req.Org == nil || req.Org.Display != "ACME IT" || req.Org.Policy.Timeout != 60 || req.From != helper.name {
			t.Fatalf("request at the machine: %+v", req)
		}
		if got := time.Until(asked.Expires); got > 91*time.Second || got < 80*time.Second {
			t.Errorf("an offer to a machine expires in %v, want the policy's minute and a margin", got)
		}
		if helper == w.ann {
			if _, err := w.pc1.Answer(ctx, req.Request, false); err != nil {
				t.Fatal(err)
			}
			if m := next(t, helper, ofType(messenger.TypeDeclined)); m.By != "pc-1" {
				t.Fatalf("declined: %+v", m)
			}
			continue
		}
		acc, err := w.pc1.Answer(ctx, req.Request, true)
		if err != nil {
			t.Fatal(err)
		}
		if acc.Role != messenger.RoleNovice || acc.Org == nil || acc.Org.Name != "acme" || acc.Peer.User != "dana" {
			t.Fatalf("accepted at the machine: %+v", acc)
		}
		m := next(t, helper, ofType(messenger.TypeAccepted))
		if m.Role != messenger.RoleExpert || m.Org == nil || m.Peer.User != "pc-1" || m.Session != acc.Session {
			t.Fatalf("accepted at the helper: %+v", m)
		}
	}
	// A helper removed from the organisation between offer and answer:
	// the answer finds no request.
	asked, err := w.dana.Ask(ctx, "pc-2", messenger.KindOffer)
	if err != nil {
		t.Fatal(err)
	}
	next(t, w.pc2, ofType(messenger.TypeRequest))
	w.th.role(t, "acme", "dana", "")
	_, err = w.pc2.Answer(ctx, asked.Request, true)
	isCode(t, err, messenger.CodeNotFound)
	// Globex's policy travels with its offers.
	if _, err := w.gus.Ask(ctx, "gx-1", messenger.KindOffer); err != nil {
		t.Fatal(err)
	}
	req := next(t, w.gx1, ofType(messenger.TypeRequest))
	if p := req.Org.Policy; !p.Record || p.Allows(messenger.RightControl) || !p.Allows(messenger.RightView) || p.Timeout != 30 {
		t.Errorf("globex's policy as the machine got it: %+v", p)
	}
	// An offline machine is refused at once.
	w.gx1.Close()
	deadline := time.Now().Add(wait)
	for {
		_, err := w.gus.Ask(context.Background(), "gx-1", messenger.KindOffer)
		if messenger.IsCode(err, messenger.CodeNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("offer to an offline machine: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOrgStore(t *testing.T) {
	th := startHub(t, nil)
	ctx := ctxT(t)
	th.org(t, "acme", "ACME", hub.DefaultPolicy())
	if err := th.Store.CreateOrg(ctx, hub.Org{Name: "acme", Display: "again", Policy: hub.DefaultPolicy()}); err == nil {
		t.Error("second organisation acme")
	}
	if err := th.Store.SetRole(ctx, "nope", "x", messenger.OrgHelper); err == nil {
		t.Error("role in a missing organisation")
	}
	if err := th.Store.SetRole(ctx, "acme", "x", "boss"); err == nil {
		t.Error("role boss")
	}
	if err := th.Store.SetPolicy(ctx, "acme", messenger.Policy{Rights: []string{"control"}, Timeout: 60}); err == nil {
		t.Error("policy without view")
	}
	if err := th.Store.SetPolicy(ctx, "acme", messenger.Policy{Rights: []string{"view"}, Timeout: 60, AuditKey: "age1nope"}); err == nil {
		t.Error("policy with a malformed audit key")
	}
	const key = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
	p := messenger.Policy{Rights: []string{"view", "clipboard"}, Record: true, Timeout: 20, AuditKey: key}
	if err := th.Store.SetPolicy(ctx, "acme", p); err != nil {
		t.Fatal(err)
	}
	o, err := th.Store.Org(ctx, "acme")
	if err != nil || !o.Policy.Record || o.Policy.Timeout != 20 || len(o.Policy.Rights) != 2 || o.Policy.AuditKey != key {
		t.Fatalf("policy read back: %+v, %v", o, err)
	}
}

// TestCrossSiteWebSocket: a page of another site cannot open a messenger
// connection in a visitor's browser (cross-site WebSocket hijacking): an
// upgrade whose Origin is not the server's own is refused before any
// message, while the server's own origin and non-browser clients (no
// Origin) are served. The messenger has no cookies, so there is nothing
// else a cross-site request could ride on (no CSRF surface).
func TestCrossSiteWebSocket(t *testing.T) {
	th := startHub(t, nil)
	for _, c := range []struct {
		origin string
		want   int
	}{
		{"https://evil.example", http.StatusForbidden},
		{"null", http.StatusForbidden},
		{th.URL, http.StatusSwitchingProtocols},
		{"", http.StatusSwitchingProtocols},
	} {
		req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, th.URL+"/v1/messenger", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		res, err := th.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("Origin %q: status %d, want %d", c.origin, res.StatusCode, c.want)
		}
	}
}

// TestEnrolTokenByRole: only an organisation's admins make its tokens
// through the messenger, and a token made so enrols a machine there.
func TestEnrolTokenByRole(t *testing.T) {
	w := newOrgWorld(t)
	for _, c := range []struct {
		who *user
		org string
	}{{w.dana, "acme"}, {w.mel, "acme"}, {w.olga, "acme"}, {w.gus, "acme"}, {w.pc1, "acme"}, {w.ann, "globex"}, {w.ann, "nope"}} {
		_, _, err := c.who.EnrolToken(ctxT(t), c.org, 1)
		isCode(t, err, messenger.CodeUnauthorized)
	}
	tok, exp, err := w.ann.EnrolToken(ctxT(t), "acme", 2)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(exp); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("the token expires in %v", d)
	}
	if _, err := w.th.enrol(t, tok, "pc-9", "n", "u"); err != nil {
		t.Fatal(err)
	}
	if org, err := w.th.Store.MachineOrg(ctxT(t), "pc-9"); err != nil || org != "acme" {
		t.Errorf("pc-9 enrolled in %q, %v", org, err)
	}
}

// TestOfferPendingAtLogin: an offer still open when the machine logs in
// again (its agent's node died, it came back through another) reaches it
// as it was made, with its organisation and policy, which is what the
// agent asks about.
func TestOfferPendingAtLogin(t *testing.T) {
	w := newOrgWorld(t)
	asked, err := w.dana.Ask(ctxT(t), "pc-1", messenger.KindOffer)
	if err != nil {
		t.Fatal(err)
	}
	again := w.th.again(t, w.pc1)
	req := next(t, again, ofType(messenger.TypeRequest))
	if req.Request != asked.Request || req.Kind != messenger.KindOffer || req.Org == nil || req.Org.Name != "acme" || req.Org.Policy.Timeout != 60 {
		t.Fatalf("the pending offer at login: %+v", req)
	}
}
