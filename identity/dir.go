package identity

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// EnvConfigDir names the environment variable that overrides the config
// directory.
const EnvConfigDir = "ASSIST_CONFIG_DIR"

// File names inside the config directory.
const (
	KeyFile    = "device.key"
	ConfigFile = "config.json"
)

// DefaultDir returns the config directory this process should use, without
// creating it: $ASSIST_CONFIG_DIR, else $XDG_CONFIG_HOME/assist, else
// ~/.config/assist (the system's user config directory elsewhere than Unix).
func DefaultDir() (string, error) {
	return dirFrom(os.Getenv, os.UserHomeDir, os.UserConfigDir)
}

// dirFrom is DefaultDir with its environment passed in, for tests.
func dirFrom(getenv func(string) string, home, userConfig func() (string, error)) (string, error) {
	if d := getenv(EnvConfigDir); d != "" {
		return filepath.Clean(d), nil
	}
	if d := getenv("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "assist"), nil
	}
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		d, err := userConfig()
		if err != nil {
			return "", fmt.Errorf("identity: no config directory: %w; set %s", err, EnvConfigDir)
		}
		return filepath.Join(d, "assist"), nil
	}
	h, err := home()
	if err != nil || h == "" {
		return "", fmt.Errorf("identity: no home directory to keep the device key in (%v); set %s to a private directory", err, EnvConfigDir)
	}
	return filepath.Join(h, ".config", "assist"), nil
}

// Dir is an opened config directory.
type Dir struct {
	path string
}

// Open creates the config directory (0700, with its parents) if needed and
// returns it. An empty path means DefaultDir.
func Open(path string) (*Dir, error) {
	if path == "" {
		var err error
		if path, err = DefaultDir(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("identity: creating config directory %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("identity: config directory %s: %w", path, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("identity: config directory %s is not a directory", path)
	}
	return &Dir{path: path}, nil
}

// Path returns the directory's path.
func (d *Dir) Path() string { return d.path }

// file returns the path of a file in the directory.
func (d *Dir) file(name string) string { return filepath.Join(d.path, name) }

// writeAtomic writes data to name in the directory with mode 0600: a
// temporary file, synced, then renamed over name.
func (d *Dir) writeAtomic(name string, data []byte) error {
	tmp, err := d.writeTemp(name, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, d.file(name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("identity: writing %s: %w", d.file(name), err)
	}
	return nil
}

// writeTemp writes data to a new 0600 temporary file next to name and returns
// its path.
func (d *Dir) writeTemp(name string, data []byte) (string, error) {
	f, err := os.CreateTemp(d.path, "."+name+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("identity: writing %s: %w", d.file(name), err)
	}
	tmp := f.Name()
	// CreateTemp makes 0600 files; Chmod anyway in case a umask or a
	// different platform did otherwise.
	err = errors.Join(f.Chmod(0o600), write(f, data), f.Sync(), f.Close())
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("identity: writing %s: %w", d.file(name), err)
	}
	return tmp, nil
}

func write(f *os.File, data []byte) error {
	_, err := f.Write(data)
	return err
}
