// Package launcher puts Assist on a Linux desktop for one user, under the
// XDG directories: an entry in the applications menu that opens the
// novice's app (`assist`), and the handler of assist:// links (the links
// `assist invite` prints and the app shows), which runs `assist join LINK`
// in a terminal, where the expert types the password the novice reads out.
//
// Two desktop entries, because the two need different things: the app
// must start without a terminal window (a grandparent clicks an icon and
// a browser page opens), while joining by link asks for a password on a
// terminal. The link handler is hidden from the menu (NoDisplay).
package launcher

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The desktop entries' file names: the desktop-file ID is what xdg-mime
// and mimeapps.list name.
const (
	AppFile  = "assist.desktop"
	LinkFile = "assist-link.desktop"
	// LinkType is the MIME type of assist:// links.
	LinkType = "x-scheme-handler/assist"
)

// Options say where to install.
type Options struct {
	// Binary is the absolute path of the assist binary the entries run.
	Binary string
	// DataHome is $XDG_DATA_HOME; "" means the environment's, else
	// ~/.local/share. The entries go into DataHome/applications.
	DataHome string
}

func (o Options) dir() (string, error) {
	home := o.DataHome
	if home == "" {
		home = os.Getenv("XDG_DATA_HOME")
	}
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no home directory to install into: %w", err)
		}
		home = filepath.Join(h, ".local", "share")
	}
	return filepath.Join(home, "applications"), nil
}

// Result says what Install did.
type Result struct {
	// App and Link are the desktop entries written.
	App, Link string
	// Default reports whether assist:// links now open with Assist
	// (xdg-mime); false with Note saying why not.
	Default bool
	Note    string
}

// Install writes both desktop entries and makes the link handler the
// default for assist:// links (xdg-mime default), then refreshes the
// desktop database if update-desktop-database is there. Without xdg-mime
// the entries are still installed, and Result.Note says so.
func Install(o Options) (Result, error) {
	if !filepath.IsAbs(o.Binary) || strings.ContainsAny(o.Binary, "\r\n") {
		return Result{}, fmt.Errorf("the assist binary %q: need an absolute path on one line", o.Binary)
	}
	dir, err := o.dir()
	if err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, fmt.Errorf("creating %s: %w", dir, err)
	}
	r := Result{App: filepath.Join(dir, AppFile), Link: filepath.Join(dir, LinkFile)}
	if err := writeFile(r.App, AppEntry(o.Binary)); err != nil {
		return r, err
	}
	if err := writeFile(r.Link, LinkEntry(o.Binary)); err != nil {
		return r, err
	}
	if p, err := exec.LookPath("update-desktop-database"); err == nil {
		// Only a cache: menus find the entries without it.
		_ = exec.Command(p, dir).Run()
	}
	xdgMime, err := exec.LookPath("xdg-mime")
	if err != nil {
		r.Note = "xdg-mime is not installed (Debian: xdg-utils), so assist:// links were not registered; install it and run this again"
		return r, nil
	}
	if out, err := exec.Command(xdgMime, "default", LinkFile, LinkType).CombinedOutput(); err != nil {
		return r, fmt.Errorf("xdg-mime default %s %s: %v: %s", LinkFile, LinkType, err, bytes.TrimSpace(out))
	}
	r.Default = true
	return r, nil
}

// Uninstall removes both entries (the association in mimeapps.list then
// names a missing entry, which desktops ignore).
func Uninstall(o Options) ([]string, error) {
	dir, err := o.dir()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, f := range []string{AppFile, LinkFile} {
		p := filepath.Join(dir, f)
		switch err := os.Remove(p); {
		case err == nil:
			removed = append(removed, p)
		case !errors.Is(err, os.ErrNotExist):
			return removed, err
		}
	}
	return removed, nil
}

// writeFile writes data via a temporary file, so a menu never reads half
// an entry.
func writeFile(path, data string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// AppEntry is the menu entry of the novice's app.
func AppEntry(binary string) string {
	return `[Desktop Entry]
Type=Application
Version=1.4
Name=Assist
GenericName=Remote help
Comment=Get help from someone you trust: they see your screen only when you say yes
Exec=` + quoteExec(binary) + `
Icon=help-browser
Terminal=false
Categories=Network;RemoteAccess;
Keywords=help;remote;assistance;support;screen;
StartupNotify=false
`
}

// LinkEntry is the handler of assist:// links: the expert's side joins, in
// a terminal (the password is typed there).
func LinkEntry(binary string) string {
	return `[Desktop Entry]
Type=Application
Version=1.4
Name=Assist: help with an invitation link
Comment=Join the person who invited you, and see their screen once they say yes
Exec=` + quoteExec(binary) + ` join %u
Icon=help-browser
Terminal=true
NoDisplay=true
MimeType=` + LinkType + `;
Categories=Network;RemoteAccess;
`
}

// quoteExec quotes a path for an Exec key (Desktop Entry Specification,
// "The Exec key"): in double quotes, with `"`, "`", "$" and "\" escaped by
// a backslash; each backslash is doubled again because the value is a
// string, whose own escape rules apply first.
func quoteExec(p string) string {
	if !strings.ContainsAny(p, " \t\n\"'\\><~|&;$*?#()`=%") {
		return p
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range p {
		switch r {
		case '"', '`', '$':
			b.WriteString(`\\`)
		case '\\':
			b.WriteString(`\\\\`)
			continue
		case '%':
			b.WriteString("%%")
			continue
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}
