package launcher

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sandbox points HOME and the XDG directories at a temporary directory,
// so the test installs for a user who exists only for it.
func sandbox(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, ".local", "share"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	// No desktop environment: xdg-mime then uses the generic
	// mimeapps.list lookup every desktop honours.
	t.Setenv("XDG_CURRENT_DESKTOP", "")
	t.Setenv("DESKTOP_SESSION", "")
	t.Setenv("KDE_FULL_SESSION", "")
	t.Setenv("GNOME_DESKTOP_SESSION_ID", "")
	return home
}

// TestInstall: both entries land under XDG_DATA_HOME/applications, they
// are valid desktop entries, xdg-mime names the link handler for
// assist:// links, and Uninstall removes them.
func TestInstall(t *testing.T) {
	xdgMime, err := exec.LookPath("xdg-mime")
	if err != nil {
		t.Skip("xdg-mime not installed (Debian: xdg-utils)")
	}
	home := sandbox(t)
	// Another program holds assist:// links: Install must take them.
	apps := filepath.Join(home, ".local", "share", "applications")
	if err := os.MkdirAll(apps, 0o755); err != nil {
		t.Fatal(err)
	}
	other := "[Desktop Entry]\nType=Application\nName=Other\nExec=/bin/true %u\nMimeType=x-scheme-handler/assist;\n"
	if err := os.WriteFile(filepath.Join(apps, "other.desktop"), []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(xdgMime, "default", "other.desktop", LinkType).CombinedOutput(); err != nil {
		t.Fatalf("xdg-mime default other.desktop: %v: %s", err, out)
	}
	bin := filepath.Join(home, "bin", "assist")
	r, err := Install(Options{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	if r.App != filepath.Join(apps, AppFile) || r.Link != filepath.Join(apps, LinkFile) || !r.Default {
		t.Fatalf("Install = %+v", r)
	}
	app, err := os.ReadFile(r.App)
	if err != nil {
		t.Fatal(err)
	}
	link, err := os.ReadFile(r.Link)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nExec=" + bin + "\n", "\nTerminal=false\n", "\nName=Assist\n"} {
		if !strings.Contains(string(app), want) {
			t.Errorf("the menu entry lacks %q:\n%s", want, app)
		}
	}
	for _, want := range []string{"\nExec=" + bin + " join %u\n", "\nMimeType=x-scheme-handler/assist;\n", "\nNoDisplay=true\n", "\nTerminal=true\n"} {
		if !strings.Contains(string(link), want) {
			t.Errorf("the link handler lacks %q:\n%s", want, link)
		}
	}
	if v, err := exec.LookPath("desktop-file-validate"); err == nil {
		for _, f := range []string{r.App, r.Link} {
			if out, err := exec.Command(v, f).CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("desktop-file-validate %s: %v: %s", filepath.Base(f), err, out)
			}
		}
	} else {
		t.Log("desktop-file-validate not installed (Debian: desktop-file-utils): entries not validated")
	}
	out, err := exec.Command(xdgMime, "query", "default", LinkType).Output()
	if err != nil {
		t.Fatalf("xdg-mime query default: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != LinkFile {
		t.Fatalf("xdg-mime query default %s = %q, want %q", LinkType, got, LinkFile)
	}
	mimeapps, err := os.ReadFile(filepath.Join(home, ".config", "mimeapps.list"))
	if err != nil || !strings.Contains(string(mimeapps), LinkType+"="+LinkFile) {
		t.Errorf("mimeapps.list does not name the handler (%v):\n%s", err, mimeapps)
	}
	// Installing again is harmless.
	if _, err := Install(Options{Binary: bin}); err != nil {
		t.Fatalf("second Install: %v", err)
	}

	removed, err := Uninstall(Options{})
	if err != nil || len(removed) != 2 {
		t.Fatalf("Uninstall = %q, %v", removed, err)
	}
	for _, f := range []string{r.App, r.Link} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", f, err)
		}
	}
}

func TestInstallRefusesRelativeBinary(t *testing.T) {
	sandbox(t)
	for _, bin := range []string{"assist", "./assist", "/tmp/a\nExec=evil"} {
		if _, err := Install(Options{Binary: bin}); err == nil {
			t.Errorf("Install(%q) succeeded", bin)
		}
	}
}

// TestQuoteExec: paths with reserved characters are quoted and escaped
// as the Desktop Entry Specification says (escapes of the quoting, then
// of the string).
func TestQuoteExec(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/usr/bin/assist", "/usr/bin/assist"},
		{"/opt/My Apps/assist", `"/opt/My Apps/assist"`},
		{`/opt/a"b/assist`, `"/opt/a\\"b/assist"`},
		{`/opt/a$b/assist`, `"/opt/a\\$b/assist"`},
		{"/opt/a`b/assist", "\"/opt/a\\\\`b/assist\""},
		{`/opt/a\b/assist`, `"/opt/a\\\\b/assist"`},
		{`/opt/100%/assist`, `"/opt/100%%/assist"`},
	} {
		if got := quoteExec(tt.in); got != tt.want {
			t.Errorf("quoteExec(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
