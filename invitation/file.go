package invitation

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes the invitation to exactly path (it adds no extension),
// readable and writable by the owner only. It writes a temporary file in the
// same directory and renames it into place, so a reader never sees half an
// invitation and a crash leaves the old file, if any, intact.
func WriteFile(path string, inv *Invitation) error {
	data, err := inv.Marshal()
	if err != nil {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("invitation: writing %s: %w", path, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	// CreateTemp already asks for 0600, but through the umask; an explicit
	// chmod does not depend on it. The invitation holds no secret, yet who
	// may read it is the novice's choice, not the directory's.
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("invitation: writing %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("invitation: writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("invitation: writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("invitation: writing %s: %w", path, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("invitation: writing %s: %w", path, err)
	}
	ok = true
	syncDir(dir)
	return nil
}

// syncDir makes the rename durable where the platform allows it; failure
// only weakens crash safety, so it is not reported.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}

// ReadFile reads and parses an invitation file. Like Parse, it does not
// check the time: call Validate.
func ReadFile(path string) (*Invitation, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("invitation: %s does not exist: check the file name, or ask the novice to send the invitation again: %w", path, err)
		}
		return nil, fmt.Errorf("invitation: cannot open %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("invitation: reading %s: %w", path, err)
	}
	inv, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return inv, nil
}
