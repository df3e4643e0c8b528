package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/chromedp/chromedp"
)

// TestFilesBothWays runs the real assist invite and assist join on one
// desktop and moves files both ways with their terminal commands: the
// expert's --send waits for the files right, a no leaves the novice's
// folder empty, a yes brings the file in under a name that overwrites
// nothing ("report (2).pdf"); the novice's file is offered to the expert,
// who refuses it once (nothing saved) and accepts it the second time; once
// the novice stops files, the expert's send is refused again.
func TestFilesBothWays(t *testing.T) {
	e2e(t)
	x := lab.StartXvfb(t, 320, 240)
	novDir, expDir, src := t.TempDir(), t.TempDir(), t.TempDir()
	mine := []byte("the novice's own report")
	if err := os.WriteFile(filepath.Join(novDir, "report.pdf"), mine, 0o600); err != nil {
		t.Fatal(err)
	}
	report := make([]byte, 5<<20+3)
	rand.Read(report)
	reportPath := filepath.Join(src, "report.pdf")
	photo := make([]byte, 700<<10)
	rand.Read(photo)
	photoPath := filepath.Join(src, "photo.jpg")
	for p, b := range map[string][]byte{reportPath: report, photoPath: photo} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	nov := startInvite(t, nil, x.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--no-page",
		"--allow", "view", "--files-dir", novDir)
	exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile, "--files-dir", expDir, "--send", reportPath))
	exp.WaitLine(t, `^state: viewing`, lineTimeout)

	// --send asks for files; the novice says no.
	nov.WaitLine(t, `^`+expertName+` asks to exchange files with you \(files sent to you are saved in your download folder\)\. Allow\? \[y/N\]$`, lineTimeout)
	nov.Send(t, "n")
	nov.WaitLine(t, `^files: not allowed: press f to allow them$`, lineTimeout)
	if es, _ := os.ReadDir(novDir); len(es) != 1 {
		t.Fatalf("after a no, the novice's folder holds %d files", len(es))
	}

	// The expert asks again; yes; the queued file goes.
	exp.Send(t, "files")
	nov.WaitLine(t, `asks to exchange files with you`, lineTimeout)
	nov.Send(t, "y")
	exp.WaitLine(t, `^files: `+noviceName+` allowed files both ways`, lineTimeout)
	saved := filepath.Join(novDir, "report (2).pdf")
	nov.WaitLine(t, `^file saved: `+regexp.QuoteMeta(saved)+`$`, lineTimeout)
	exp.WaitLine(t, `^file: report\.pdf 100% \(5\.2 MB of 5\.2 MB\)$`, lineTimeout)
	exp.WaitLine(t, `^file sent: report\.pdf reached `+noviceName+`$`, lineTimeout)
	same(t, saved, report)
	same(t, filepath.Join(novDir, "report.pdf"), mine)

	// The novice sends a photo: refused once, then accepted.
	nov.Send(t, "send "+photoPath)
	exp.WaitLine(t, `^file: `+noviceName+` wants to send you photo\.jpg \(716\.8 kB\): type accept or refuse$`, lineTimeout)
	exp.Send(t, "refuse")
	nov.WaitLine(t, `^file not sent: `+expertName+` refused photo\.jpg: `+expertName+` refused it$`, lineTimeout)
	if es, _ := os.ReadDir(expDir); len(es) != 0 {
		t.Fatalf("after a refusal, the expert's folder holds %d files", len(es))
	}
	nov.Send(t, "send "+photoPath)
	exp.WaitLine(t, `wants to send you photo\.jpg`, lineTimeout)
	exp.Send(t, "accept")
	exp.WaitLine(t, `^file saved: `+regexp.QuoteMeta(filepath.Join(expDir, "photo.jpg"))+`$`, lineTimeout)
	nov.WaitLine(t, `^file sent: photo\.jpg reached `+expertName+`$`, lineTimeout)
	same(t, filepath.Join(expDir, "photo.jpg"), photo)

	// The novice stops files: the expert's next send is not sent but
	// asks again.
	nov.Send(t, "f")
	nov.WaitLine(t, `^files: not allowed: press f to allow them$`, lineTimeout)
	exp.WaitLine(t, `^files: `+noviceName+` has not allowed files`, lineTimeout)
	exp.Send(t, "send "+photoPath)
	exp.WaitLine(t, `^files: `+noviceName+` has not allowed files yet: asking`, lineTimeout)
	nov.WaitLine(t, `asks to exchange files with you`, lineTimeout)
	nov.Send(t, "n")
	nov.Send(t, "end")
	nov.WaitExit(t, lineTimeout)
	if es, _ := os.ReadDir(novDir); len(es) != 2 {
		t.Fatalf("the novice's folder holds %d files, want 2", len(es))
	}
}

func same(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, not the %d sent", path, len(got), len(want))
	}
}

// dropProxy forwards TCP connections to target at a limited rate, counts
// what goes towards target, and can cut every connection at once: the
// network drop.
type dropProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	sent   atomic.Int64
	wg     sync.WaitGroup
}

func startDropProxy(t *testing.T, target string) *dropProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{ln: ln, target: target}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Go(func() { p.pipe(u, c, true) })
			p.wg.Go(func() { p.pipe(c, u, false) })
		}
	})
	t.Cleanup(func() { ln.Close(); p.drop(); p.wg.Wait() })
	return p
}

// pipe copies src to dst, towards the novice at 16 MiB/s at most, so
// that a drop lands in the middle of a transfer.
func (p *dropProxy) pipe(dst, src net.Conn, count bool) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	start := time.Now()
	var n int64
	for {
		m, err := src.Read(buf)
		if m > 0 {
			if _, werr := dst.Write(buf[:m]); werr != nil {
				return
			}
			if count {
				n += int64(m)
				p.sent.Add(int64(m))
				if ahead := time.Duration(n)*time.Second/(16<<20) - time.Since(start); ahead > 0 {
					time.Sleep(ahead) // a rate limit, not a wait for an event
				}
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *dropProxy) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestFilesResumeAfterDrop: the connection between assist join and
// assist invite is cut in the middle of a file; the novice keeps what
// arrived, the expert joins again and sends the same file, which resumes
// where it stopped (only the rest crosses) and arrives whole.
func TestFilesResumeAfterDrop(t *testing.T) {
	e2e(t)
	x := lab.StartXvfb(t, 320, 240)
	novDir, src := t.TempDir(), t.TempDir()
	const size = 48 << 20
	data := make([]byte, size)
	rand.Read(data)
	big := filepath.Join(src, "big.bin")
	if err := os.WriteFile(big, data, 0o600); err != nil {
		t.Fatal(err)
	}
	nov := startInvite(t, nil, x.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--no-page",
		"--allow", "view", "--files-dir", novDir)
	proxy := startDropProxy(t, nov.Addrs[0])
	// The expert's invitation leads through the proxy.
	b, err := os.ReadFile(nov.File)
	if err != nil {
		t.Fatal(err)
	}
	var inv map[string]any
	if err := json.Unmarshal(b, &inv); err != nil {
		t.Fatal(err)
	}
	inv["addrs"] = []string{proxy.ln.Addr().String()}
	b, _ = json.Marshal(inv)
	viaProxy := filepath.Join(t.TempDir(), "proxy.assist")
	if err := os.WriteFile(viaProxy, b, 0o600); err != nil {
		t.Fatal(err)
	}

	exp := connected(t, startJoin(t, nil, viaProxy, nov.PasswordFile, "--send", big))
	nov.WaitLine(t, `asks to exchange files with you`, lineTimeout)
	nov.Send(t, "y")
	nov.WaitLine(t, `^file: big\.bin [3-5][0-9]% `, lineTimeout)
	proxy.drop()
	exp.WaitExit(t, lineTimeout)
	nov.WaitLine(t, `^file interrupted: big\.bin`, lineTimeout)
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	parts, _ := filepath.Glob(filepath.Join(novDir, ".assist-*.part"))
	if len(parts) != 1 {
		t.Fatalf("partial files: %v", parts)
	}
	fi, err := os.Stat(parts[0])
	if err != nil || fi.Size() < size*3/10 || fi.Size() == size {
		t.Fatalf("partial file: %v %v", fi, err)
	}
	before := proxy.sent.Load()

	// The expert comes back and sends the same file.
	connected(t, startJoin(t, nil, viaProxy, nov.PasswordFile, "--send", big))
	nov.WaitLine(t, `asks to exchange files with you`, lineTimeout)
	nov.Send(t, "y")
	m := nov.WaitLine(t, `^file: big\.bin resumes at (.+) of 50\.3 MB$`, lineTimeout)
	nov.WaitLine(t, `^file saved: `+regexp.QuoteMeta(filepath.Join(novDir, "big.bin"))+`$`, lineTimeout)
	same(t, filepath.Join(novDir, "big.bin"), data)
	again := proxy.sent.Load() - before
	if limit := size - fi.Size() + 2<<20; again > limit {
		t.Fatalf("%d bytes crossed after the drop for a file of %d of which %d had arrived; want at most %d", again, size, fi.Size(), limit)
	}
	t.Logf("resumed at %s (%d bytes kept); %d bytes crossed after the drop", m[1], fi.Size(), again)
	if parts, _ := filepath.Glob(filepath.Join(novDir, ".assist-*")); len(parts) != 0 {
		t.Fatalf("left behind: %v", parts)
	}
}

// TestFilesBrowserViewer: assist join's browser viewer, in headless
// Chromium, moves files both ways with the real binaries: Ask to exchange
// files (the novice says yes on the terminal), a file chosen in the page
// is uploaded and arrives on the novice's side, and the novice's file is
// offered in the page, accepted with a click and saved on the expert's.
func TestFilesBrowserViewer(t *testing.T) {
	e2e(t)
	if _, err := os.Stat(filepath.Join(lab.ModuleRoot(t), "web", "node_modules", "@novnc", "novnc", "core", "rfb.js")); err != nil {
		t.Skipf("noVNC is not installed (run `npm ci --prefix web`): %v", err)
	}
	x := lab.StartXvfb(t, 320, 240)
	novDir, expDir, src := t.TempDir(), t.TempDir(), t.TempDir()
	up := make([]byte, 3<<20+11)
	rand.Read(up)
	upPath := filepath.Join(src, "budget 2026.xlsx")
	down := make([]byte, 900<<10)
	rand.Read(down)
	downPath := filepath.Join(src, "scan.pdf")
	for p, b := range map[string][]byte{upPath: up, downPath: down} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	nov := startInvite(t, nil, x.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--no-page",
		"--allow", "view", "--files-dir", novDir)
	exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile, "--files-dir", expDir))

	bctx := lab.StartChromium(t, 1100, 700)
	logConsole(t, bctx)
	bxRun(t, bctx, chromedp.Navigate(exp.Web))
	wait := func(expr string) {
		t.Helper()
		pctx, cancel := context.WithTimeout(bctx, lineTimeout)
		defer cancel()
		full := `(() => { const s = window.assistViewer; return !!s && (` + expr + `); })()`
		if _, err := chromedp.Run(pctx, chromedp.Poll[bool](full, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			status, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`JSON.stringify(window.assistViewer)`))
			t.Fatalf("the viewer never got to %s: %v (assistViewer: %s)", expr, err, status)
		}
	}
	q := func(id string) string { return `document.querySelector('[data-testid="` + id + `"]')` }
	wait(`s.state === "viewing" && !` + q("files-panel") + `.hidden && !` + q("files-request") + `.hidden`)

	bxRun(t, bctx, chromedp.Click(bxID("files-request")))
	nov.WaitLine(t, `asks to exchange files with you`, lineTimeout)
	nov.Send(t, "y")
	wait(`!` + q("files-input") + `.closest('.sv-files-send').hidden`)

	// Expert to novice: a file chosen in the page.
	bxRun(t, bctx, chromedp.SetUploadFiles(bxID("files-input"), []string{upPath}), chromedp.Click(bxID("files-send")))
	saved := filepath.Join(novDir, "budget 2026.xlsx")
	nov.WaitLine(t, `^file saved: `+regexp.QuoteMeta(saved)+`$`, lineTimeout)
	same(t, saved, up)
	wait(`Object.values(s.files).includes("completed") && s.uploads === 0`)

	// Novice to expert: Accept in the page.
	nov.Send(t, "send "+downPath)
	wait(`!!document.querySelector('[data-testid^="file-accept-"]')`)
	bxSave(t, bctx)
	bxRun(t, bctx, chromedp.Click(chromedp.CSS(`[data-testid^="file-accept-"]`)))
	exp.WaitLine(t, `^file saved: `+regexp.QuoteMeta(filepath.Join(expDir, "scan.pdf"))+`$`, lineTimeout)
	same(t, filepath.Join(expDir, "scan.pdf"), down)
	wait(`Object.values(s.files).filter((v) => v === "completed").length === 2`)
	if got := bxEval[string](t, bctx, q("files-list")+`.textContent`); !strings.Contains(got, "Saved: "+filepath.Join(expDir, "scan.pdf")) {
		t.Fatalf("files list: %q", got)
	}
	t.Run("screenshot", func(t *testing.T) { bxSave(t, bctx) })
}

// TestFilesNovicePage: on the novice's page, the expert's files question
// is answered with Allow, the file arrives with its line (saved where),
// and Stop files takes the right away, which the expert hears.
func TestFilesNovicePage(t *testing.T) {
	e2e(t)
	x := lab.StartXvfb(t, 320, 240)
	novDir, src := t.TempDir(), t.TempDir()
	data := make([]byte, 2<<20)
	rand.Read(data)
	p := filepath.Join(src, "holiday.jpg")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	nov := startInvite(t, nil, x.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "view", "--files-dir", novDir)
	b := newPageBrowser(t, lineWithPrefix(t, nov.LineProc, "page: "))
	exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile, "--send", p))
	b.wait(t, `s.question > 0`)
	wantContains(t, "files question", b.text(t, "question-text"), expertName, "exchange files")
	b.click(t, "allow")
	saved := filepath.Join(novDir, "holiday.jpg")
	nov.WaitLine(t, `^file saved: `+regexp.QuoteMeta(saved)+`$`, lineTimeout)
	b.wait(t, `s.files && s.transfers.includes('completed')`)
	wantContains(t, "transfers", b.text(t, "transfers"), "holiday.jpg", "Saved: "+saved)
	same(t, saved, data)
	saveShot(t, b.ctx, "novice-page-files")
	b.click(t, "files")
	exp.WaitLine(t, `^files: `+noviceName+` has not allowed files`, lineTimeout)
	b.wait(t, `!s.files`)
}
