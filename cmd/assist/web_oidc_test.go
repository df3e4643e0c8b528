package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

// startTestOP starts a real OpenID provider (zitadel/oidc's example OP,
// users in memory) on loopback, with the client assist-web (secret
// s3cret) whose redirect URI is callback. Its users are
// test-user@127.0.0.1 (subject id1) and test-user2 (id2), password
// verysecure. It returns the issuer URL.
func startTestOP(t *testing.T, callback string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	storage.RegisterClients(storage.WebClient("assist-web", "s3cret", callback))
	srv := &http.Server{Handler: exampleop.SetupServer(issuer, storage.NewStorage(storage.NewUserStore(issuer)), nil, false)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return issuer
}

// TestWebCompanySignIn: the operator points acme at its company's OpenID
// provider and links helen's company account; in the web app, a company
// account nobody linked is refused with what to ask the admin, and helen
// signs in with hers and sees acme's machines. The provider's login page
// is the real one, in the same Chromium.
func TestWebCompanySignIn(t *testing.T) {
	e2e(t)
	needExpertApp(t)
	o := newOrgSetup(t)
	site := localhostURL(t, o.srv)
	issuer := startTestOP(t, site+"/v1/oidc/callback")
	secret := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := o.org(t, "oidc", "acme", "--issuer", issuer, "--client-id", "assist-web", "--client-secret-file", secret); out != "oidc: acme issuer="+issuer+" client-id=assist-web\n" {
		t.Fatalf("org oidc printed %q", out)
	}
	o.org(t, "add", "acme", "helen", "--role", "helper")
	if out := o.org(t, "link", "acme", "helen", "--subject", "id1"); out != "acme: subject id1 is helen\n" {
		t.Fatalf("org link printed %q", out)
	}
	o.enrol(t, o.token(t, "1"), "pc-o", "front desk", "carol", ":0", "")

	ctx := startExpertChromium(t, spkiPin(t, o.srv))
	signIn := func(username, shot string) {
		t.Helper()
		bxRun(t, ctx, chromedp.Navigate(site+"/"))
		mxWait(t, ctx, `window.assistMessenger?.phase === "signed-out"`)
		bxRun(t, ctx, chromedp.Click(`[data-testid="company-box"] summary`),
			chromedp.SendKeys(bxID("company-org"), "acme"))
		if shot != "" {
			bxRun(t, ctx, chromedp.ScrollIntoView(`[data-testid="company-box"]`))
			saveShot(t, ctx, shot)
		}
		bxRun(t, ctx, chromedp.Click(bxID("company-signin")),
			// The provider's own login page.
			chromedp.WaitVisible(`#username`),
			chromedp.SendKeys(`#username`, username),
			chromedp.SendKeys(`#password`, "verysecure"),
			chromedp.Click(`button[type="submit"]`))
	}

	signIn("test-user2", "web-company-signin")
	bxRun(t, ctx, chromedp.WaitVisible(`#message`))
	mxWait(t, ctx, `document.querySelector('#message')?.textContent.includes('is not linked to an Assist account of acme')`)
	saveShot(t, ctx, "web-company-refused")
	if msg := bxEval[string](t, ctx, `document.querySelector('#message').textContent`); !strings.Contains(msg, "assist org link acme ACCOUNT --subject id2") {
		t.Errorf("the refusal says %q, not what the admin runs", msg)
	}

	signIn("test-user@127.0.0.1", "")
	wctx, cancel := context.WithTimeout(ctx, lineTimeout)
	_, err := chromedp.Run(wctx, chromedp.WaitVisible(bxID("messenger")))
	cancel()
	if err != nil {
		where, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " saying " + JSON.stringify(document.body.innerText) + " state " + JSON.stringify(window.assistMessenger) + " error " + document.querySelector('[data-testid="messenger-error"]').textContent`))
		for _, l := range strings.Split(o.srv.stderr.String(), "\n") {
			if strings.Contains(l, "oidc") {
				t.Log(l)
			}
		}
		t.Fatalf("after the provider's login: %v; the browser is at %s", err, where)
	}
	mxWait(t, ctx, `window.assistMessenger?.phase === "online" && window.assistMessenger.user === "helen"`)
	if h := bxEval[string](t, ctx, `location.hash`); h != "" {
		t.Errorf("the address keeps %q after signing in", h)
	}
	mxWait(t, ctx, `window.assistMessenger.machines?.["pc-o"] === "online"`)
}
