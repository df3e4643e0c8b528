package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// The messenger in the expert's web app, end to end: `assist serve`
// serves it, Chromium signs in with a passkey (the DevTools virtual
// authenticator), and the other people are real `assist` commands with
// their own config directories.

// webUser is a person on the command line: their own ASSIST_CONFIG_DIR.
type webUser struct {
	env  []string
	name string
}

func newWebUser(t *testing.T, srv *servedProc, name, display string) *webUser {
	t.Helper()
	u := &webUser{env: []string{"ASSIST_CONFIG_DIR=" + t.TempDir()}, name: name}
	p := lab.StartLines(t, u.env, lab.AssistBinary(t), "login", srv.URL, "--user", name, "--display-name", display,
		"--server-fingerprint", srv.Fingerprint)
	p.WaitLine(t, `^logged in: `+regexp.QuoteMeta(name)+` on `, lineTimeout)
	if code := p.WaitExit(t, lineTimeout); code != 0 {
		t.Fatalf("assist login %s: exit %d\n%s", name, code, p.Output())
	}
	return u
}

func (u *webUser) start(t *testing.T, args ...string) *lab.LineProc {
	t.Helper()
	return lab.StartLines(t, u.env, lab.AssistBinary(t), args...)
}

// localhostURL is the server's URL by the name browsers accept passkeys
// for (never an IP address).
func localhostURL(t *testing.T, srv *servedProc) string {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return "https://localhost:" + u.Port()
}

// addAuthenticator gives the tab of ctx a virtual platform authenticator
// that holds passkeys and verifies its user at once.
func addAuthenticator(t *testing.T, ctx context.Context) webauthn.AuthenticatorID {
	t.Helper()
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	r, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
		Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
		IsUserVerified: true, AutomaticPresenceSimulation: true,
		// Chromium lists a credential's trust-group fields, and takes
		// it back (AddCredential) only from an authenticator with them.
		HasCmtgKey: true,
	}})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return r.AuthenticatorID
}

// mxWait waits until a JavaScript expression is true in the page, and
// says what the messenger was doing if it never is.
func mxWait(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, lineTimeout)
	defer cancel()
	if _, err := chromedp.Run(pctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.assistMessenger)`))
		t.Fatalf("page never got to %s: %v (assistMessenger: %s)", expr, err, st)
	}
}

func contactSel(user, part string) string {
	return fmt.Sprintf(`[data-testid="contact"][data-user=%q] [data-testid=%q]`, user, part)
}

// TestWebMessenger: create an account with a passkey, add a contact by
// code (both ways), see their presence change live, get their requests
// for help (focused, Enter accepts, Decline declines), and see and remove
// this account's devices, from a second browser that signed in with the
// same passkey and was not confirmed.
func TestWebMessenger(t *testing.T) {
	e2e(t)
	t.Parallel()
	needExpertApp(t)
	srv := startServe(t, t.TempDir())
	site := localhostURL(t, srv)
	ctx := startExpertChromium(t, spkiPin(t, srv))
	// At the address assist serve prints, the page says where passkeys
	// work.
	bxRun(t, ctx, chromedp.Navigate(srv.URL+"/"))
	mxWait(t, ctx, `window.assistMessenger?.phase === "signed-out"`)
	wantContains(t, "the sign-in at an IP address", bxText(t, ctx, "wrong-address"), "open "+site+" to sign in")
	bxRun(t, ctx, chromedp.Navigate(site+"/"))
	auth := addAuthenticator(t, ctx)
	mxWait(t, ctx, `window.assistMessenger?.phase === "signed-out"`)
	if !bxEval[bool](t, ctx, `document.querySelector('[data-testid="wrong-address"]').hidden`) {
		t.Error("at the server's name, the page says to go elsewhere")
	}
	bxRun(t, ctx, chromedp.Click(`[data-testid="register-box"] summary`))
	saveShot(t, ctx, "web-messenger-signin")

	// An account with a passkey; this browser is its first device.
	bxRun(t, ctx,
		chromedp.SendKeys(bxID("register-user"), "alice"),
		chromedp.SendKeys(bxID("register-display"), "Alice Helpdesk"),
		chromedp.Click(bxID("register")))
	mxWait(t, ctx, `window.assistMessenger.phase === "online" && window.assistMessenger.user === "alice"`)
	if !bxEval[bool](t, ctx, `window.assistMessenger.confirmed && document.querySelector('[data-testid="unconfirmed"]').hidden`) {
		t.Error("the account's first browser is shown as not confirmed")
	}
	wantContains(t, "the header", bxText(t, ctx, "me"), "Alice Helpdesk", "alice", "Online")

	// Bob (command line) shows a contact code; Alice enters it.
	bob := newWebUser(t, srv, "bob", "Bob Novice")
	inv := bob.start(t, "contacts", "invite")
	code := inv.WaitLine(t, `^contact code: (\S+)$`, lineTimeout)[1]
	bxRun(t, ctx, chromedp.SendKeys(bxID("contact-code-input"), code), chromedp.Click(bxID("contact-add")))
	inv.WaitLine(t, `^contact added: alice \(key sha256:[0-9a-f]{64}\)$`, lineTimeout)
	mxWait(t, ctx, `window.assistMessenger.contacts.bob === "offline"`)
	wantContains(t, "the pairing's outcome", bxText(t, ctx, "contact-progress"), "Contact added: Bob Novice (bob, key sha256:")
	if got := bxEval[string](t, ctx, fmt.Sprintf(`document.querySelector(%q).textContent`, contactSel("bob", "contact-name"))); got != "Bob Novice" {
		t.Errorf("bob's name in the list: %q", got)
	}

	// Carol (command line) enters the code Alice's page shows.
	carol := newWebUser(t, srv, "carol", "Carol <b>Bold</b>")
	bxRun(t, ctx, chromedp.Click(bxID("show-contact-code")))
	mxWait(t, ctx, `window.assistMessenger.lastCode !== ""`)
	shown := bxText(t, ctx, "contact-code")
	add := carol.start(t, "contacts", "add", shown)
	add.WaitLine(t, `^contact added: alice \(key sha256:[0-9a-f]{64}\)$`, lineTimeout)
	mxWait(t, ctx, `window.assistMessenger.contacts.carol === "offline"`)
	t.Run("names are text", func(t *testing.T) {
		// Carol chose a display name with markup: it is shown as typed.
		name := bxEval[string](t, ctx, fmt.Sprintf(`document.querySelector(%q).textContent`, contactSel("carol", "contact-name")))
		bold := bxEval[bool](t, ctx, `!!document.querySelector('[data-testid="contacts"] b')`)
		if name != "Carol <b>Bold</b>" || bold {
			t.Errorf("carol's display name shows as %q (markup rendered: %v)", name, bold)
		}
		// And in her request.
		ask := carol.start(t, "ask", "alice")
		ask.WaitLine(t, `^asked: alice$`, lineTimeout)
		mxWait(t, ctx, `window.assistMessenger.requests.length === 1`)
		if text := bxText(t, ctx, "request-text"); text != "Carol <b>Bold</b> asks for your help" || bxEval[bool](t, ctx, `!!document.querySelector('[data-testid="requests"] b')`) {
			t.Errorf("carol's request reads %q", text)
		}
		if err := ask.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		ask.WaitLine(t, `^cancelled$`, lineTimeout)
		mxWait(t, ctx, `window.assistMessenger.requests.length === 0`)
	})

	t.Run("presence", func(t *testing.T) {
		watch := bob.start(t, "contacts", "--watch")
		mxWait(t, ctx, `window.assistMessenger.contacts.bob === "online"`)
		if s := bxEval[string](t, ctx, fmt.Sprintf(`document.querySelector(%q).textContent`, contactSel("bob", "contact-state"))); s != "Online" {
			t.Errorf("bob's state reads %q", s)
		}
		// Online contacts come first.
		if first := bxEval[string](t, ctx, `document.querySelector('[data-testid="contacts"] li').dataset.user`); first != "bob" {
			t.Errorf("the first contact is %q, want bob (online)", first)
		}
		saveShot(t, ctx, "web-messenger-contacts")
		stop(t, watch, "assist contacts --watch")
		mxWait(t, ctx, `window.assistMessenger.contacts.bob === "offline"`)
	})

	t.Run("offer help", func(t *testing.T) {
		// Alice offers; Bob's `assist requests` gets it and says no.
		reqs := bob.start(t, "requests")
		mxWait(t, ctx, `window.assistMessenger.contacts.bob === "online"`)
		bxRun(t, ctx, chromedp.Click(contactSel("bob", "offer")))
		mxWait(t, ctx, `window.assistMessenger.outgoing?.state === "waiting"`)
		wantContains(t, "the offer", bxText(t, ctx, "outgoing-text"), "Offering help to Bob Novice")
		if !bxEval[bool](t, ctx, fmt.Sprintf(`document.querySelector(%q).disabled`, contactSel("carol", "offer"))) {
			t.Error("a second offer can be made while one waits")
		}
		id := reqs.WaitLine(t, `^request: (\S+) from alice$`, lineTimeout)[1]
		reqs.Send(t, "decline "+id)
		mxWait(t, ctx, `window.assistMessenger.outgoing?.state === "declined"`)
		wantContains(t, "the answer", bxText(t, ctx, "outgoing-text"), "Bob Novice said no")

		// A second offer, withdrawn before Bob answers.
		bxRun(t, ctx, chromedp.Click(contactSel("bob", "offer")))
		id = reqs.WaitLine(t, `^request: (\S+) from alice$`, lineTimeout)[1]
		bxRun(t, ctx, chromedp.Click(bxID("cancel-offer")))
		reqs.WaitLine(t, `^closed: `+regexp.QuoteMeta(id)+` cancelled$`, lineTimeout)
		mxWait(t, ctx, `window.assistMessenger.outgoing?.state === "closed"`)
		stop(t, reqs, "assist requests")
		mxWait(t, ctx, `window.assistMessenger.contacts.bob === "offline"`)
	})

	t.Run("decline", func(t *testing.T) {
		ask := bob.start(t, "ask", "alice")
		ask.WaitLine(t, `^asked: alice$`, lineTimeout)
		mxWait(t, ctx, `window.assistMessenger.requests.length === 1`)
		// The request has the focus at once.
		mxWait(t, ctx, `document.activeElement?.dataset.testid === "request"`)
		wantContains(t, "the request", bxText(t, ctx, "request-text"), "Bob Novice asks for your help")
		if left := bxText(t, ctx, "request-left"); !regexp.MustCompile(`^[45]:[0-5][0-9] left$`).MatchString(left) {
			t.Errorf("time left reads %q", left)
		}
		saveShot(t, ctx, "web-messenger-request")
		bxRun(t, ctx, chromedp.Click(bxID("decline")))
		ask.WaitLine(t, `^declined by alice$`, lineTimeout)
		mxWait(t, ctx, `window.assistMessenger.requests.length === 0`)
	})

	t.Run("cancelled", func(t *testing.T) {
		ask := bob.start(t, "ask", "alice")
		ask.WaitLine(t, `^asked: alice$`, lineTimeout)
		mxWait(t, ctx, `window.assistMessenger.requests.length === 1`)
		// Ctrl-C before an answer withdraws the request.
		if err := ask.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		ask.WaitLine(t, `^cancelled$`, lineTimeout)
		mxWait(t, ctx, `window.assistMessenger.requests.length === 0`)
		wantContains(t, "the note", bxText(t, ctx, "messenger-note"), "Bob Novice cancelled the request")
	})

	t.Run("accept with Enter", func(t *testing.T) {
		// Bob asks from his desktop; Alice accepts with Enter, and her
		// browser joins the session with the password both devices
		// derive from their keys: nobody types a code.
		d := newConsentDesktop(t)
		ask := bob.start(t, "ask", "alice", "--display", d.Display, "--no-page")
		ask.WaitLine(t, `^asked: alice$`, lineTimeout)
		mxWait(t, ctx, `document.activeElement?.dataset.testid === "request"`)
		bxRun(t, ctx, chromedp.KeyEvent("\r"))
		ask.WaitLine(t, `^accepted by alice$`, lineTimeout)
		mxWait(t, ctx, `window.assistMessenger.requests.length === 0`)
		ask.WaitLine(t, `wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
		bxWait(t, ctx, `window.assistExpertPage.phase === "session" && window.assistExpertPage.state === "asking"`)
		ask.Send(t, "y")
		bxWait(t, ctx, `window.assistExpertPage.state === "viewing" && window.assistExpertPage.rfb === "connected"`)
		bxWaitPixels(t, ctx, d.X, lab.PatternBars(desktopSize))
		// Both are busy while in the session.
		mxWait(t, ctx, `window.assistMessenger.contacts.bob === "busy"`)
		// A request meanwhile: the header says someone waits.
		ask2 := carol.start(t, "ask", "alice")
		ask2.WaitLine(t, `^asked: alice$`, lineTimeout)
		mxWait(t, ctx, `!document.querySelector('[data-testid="requests-badge"]').hidden`)
		wantContains(t, "the header", bxText(t, ctx, "requests-badge"), "1 request for help waiting")
		saveShot(t, ctx, "web-messenger-session")
		if err := ask2.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		ask2.WaitLine(t, `^cancelled$`, lineTimeout)
		bxRun(t, ctx, chromedp.Click(bxID("leave")))
		bxWait(t, ctx, `window.assistExpertPage.phase === "ended"`)
		ask.WaitExit(t, lineTimeout)
		mxWait(t, ctx, `window.assistMessenger.contacts.bob === "offline"`)
		bxRun(t, ctx, chromedp.Navigate(site+"/"))
		mxWait(t, ctx, `window.assistMessenger?.phase === "online"`)
	})

	t.Run("block", func(t *testing.T) {
		bxRun(t, ctx, chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`))
		bxRun(t, ctx, chromedp.Click(contactSel("carol", "block-contact")))
		mxWait(t, ctx, `!("carol" in window.assistMessenger.contacts) && window.assistMessenger.blocked.includes("carol")`)
		p := carol.start(t, "ask", "alice")
		if code := p.WaitExit(t, lineTimeout); code == 0 {
			t.Errorf("a blocked contact asked for help:\n%s", p.Output())
		}
		bxRun(t, ctx, chromedp.Click(`[data-testid="blocked-box"] summary`), chromedp.Click(`[data-testid="blocked"] [data-testid="unblock"]`))
		mxWait(t, ctx, `window.assistMessenger.blocked.length === 0 && !("carol" in window.assistMessenger.contacts)`)
	})

	t.Run("devices", func(t *testing.T) {
		mxWait(t, ctx, `window.assistMessenger.devices === 1`)
		// A second browser (its own storage) with the same passkey.
		creds, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: auth})
		if err != nil || len(creds.Credentials) != 1 {
			t.Fatalf("the passkey: %v, %d credentials", err, len(creds.Credentials))
		}
		ctx2, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
		defer cancel()
		logConsole(t, ctx2)
		bxRun(t, ctx2, chromedp.Navigate(site+"/"))
		auth2 := addAuthenticator(t, ctx2)
		passkey := *creds.Credentials[0]
		if len(passkey.CmtgKeys) == 0 {
			passkey.ActiveCmtgKeyIndex = nil
		}
		if _, err := chromedp.Call(ctx2, webauthn.AddCredential, webauthn.AddCredentialParams{AuthenticatorID: auth2, Credential: &passkey}); err != nil {
			t.Fatal(err)
		}
		mxWait(t, ctx2, `window.assistMessenger?.phase === "signed-out"`)
		bxRun(t, ctx2, chromedp.Click(bxID("passkey-signin")))
		mxWait(t, ctx2, `window.assistMessenger.phase === "online" && window.assistMessenger.user === "alice"`)
		if !bxEval[bool](t, ctx2, `!window.assistMessenger.confirmed && !document.querySelector('[data-testid="unconfirmed"]').hidden`) {
			t.Error("a browser that signed in with a passkey is not shown as still to be confirmed")
		}
		mxWait(t, ctx2, `window.assistMessenger.contacts.bob === "offline"`)
		saveShot(t, ctx2, "web-messenger-unconfirmed")

		// Not confirmed yet: Bob's Assist would refuse this browser's
		// key, so it does not accept, and says so; the request stays
		// open for a confirmed device.
		ask := bob.start(t, "ask", "alice")
		ask.WaitLine(t, `^asked: alice$`, lineTimeout)
		mxWait(t, ctx2, `window.assistMessenger.requests.length === 1`)
		bxRun(t, ctx2, chromedp.Click(bxID("accept")))
		mxWait(t, ctx2, `!document.querySelector('[data-testid="messenger-note"]').hidden`)
		wantContains(t, "the unconfirmed browser's note", bxText(t, ctx2, "messenger-note"), "cannot accept in this browser yet", "confirm this browser")
		if n := bxEval[int](t, ctx2, `window.assistMessenger.requests.length`); n != 1 {
			t.Errorf("%d requests shown after the refused accept, want 1 still open", n)
		}
		if err := ask.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		ask.WaitLine(t, `^cancelled$`, lineTimeout)
		mxWait(t, ctx2, `window.assistMessenger.requests.length === 0`)

		// The first browser sees it, not confirmed, and confirms it
		// with a device code.
		bxRun(t, ctx, chromedp.Navigate(site+"/"))
		mxWait(t, ctx, `window.assistMessenger?.phase === "online" && window.assistMessenger.devices === 2 && window.assistMessenger.unconfirmedDevices === 1`)
		bxRun(t, ctx, chromedp.Click(bxID("show-device-code")))
		mxWait(t, ctx, `window.assistMessenger.lastCode !== ""`)
		code := bxText(t, ctx, "device-code")
		bxRun(t, ctx2, chromedp.SendKeys(bxID("device-code-input"), code), chromedp.Click(bxID("device-confirm")))
		mxWait(t, ctx2, `window.assistMessenger.confirmed && window.assistMessenger.phase === "online"`)
		if !bxEval[bool](t, ctx2, `document.querySelector('[data-testid="unconfirmed"]').hidden`) {
			t.Error("the confirmed browser still says it is not confirmed")
		}
		wantContains(t, "the confirming browser", bxText(t, ctx, "device-progress"), "Device added and confirmed")
		bxRun(t, ctx, chromedp.Navigate(site+"/"))
		mxWait(t, ctx, `window.assistMessenger?.phase === "online" && window.assistMessenger.devices === 2 && window.assistMessenger.unconfirmedDevices === 0`)

		// Then removes it.
		bxRun(t, ctx, chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`))
		bxRun(t, ctx, chromedp.Click(`[data-testid="device"][data-self="false"] [data-testid="remove-device"]`))
		mxWait(t, ctx, `window.assistMessenger.devices === 1`)
		mxWait(t, ctx2, `window.assistMessenger.phase === "signed-out"`)
		wantContains(t, "the removed browser", bxText(t, ctx2, "messenger-error"), "no longer signed in")
	})
}
