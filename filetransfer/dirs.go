package filetransfer

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// DownloadDir is the user's download folder: XDG_DOWNLOAD_DIR, or the
// XDG_DOWNLOAD_DIR line of ~/.config/user-dirs.dirs (where desktops
// keep it, translated: "Téléchargements"), or ~/Downloads.
func DownloadDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	if runtime.GOOS == "windows" {
		return filepath.Join(home, "Downloads")
	}
	expand := func(v string) string {
		v = strings.Trim(strings.TrimSpace(v), `"`)
		v = strings.Replace(v, "$HOME", home, 1)
		if !filepath.IsAbs(v) || filepath.Clean(v) == filepath.Clean(home) {
			return "" // xdg-user-dirs says $HOME when the folder is unset
		}
		return v
	}
	if v := expand(os.Getenv("XDG_DOWNLOAD_DIR")); v != "" {
		return v
	}
	cfg := os.Getenv("XDG_CONFIG_HOME")
	if cfg == "" {
		cfg = filepath.Join(home, ".config")
	}
	if f, err := os.Open(filepath.Join(cfg, "user-dirs.dirs")); err == nil {
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			if v, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "XDG_DOWNLOAD_DIR="); ok {
				if d := expand(v); d != "" {
					return d
				}
			}
		}
	}
	return filepath.Join(home, "Downloads")
}
