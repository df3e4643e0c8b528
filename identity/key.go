package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
)

// DeviceKey returns this device's private key, creating device.key on first
// use. It refuses a key file that other users can read or write, and one that
// is not a 32-byte seed, with an error that says what to do.
//
// Two processes creating the key at once end up with the same key: the new
// key is written to a temporary file and linked into place only if no key
// exists yet, and the loser reads the winner's.
func (d *Dir) DeviceKey() (ed25519.PrivateKey, error) {
	key, err := d.readKey()
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed) // never fails since Go 1.24
	defer clear(seed)
	tmp, err := d.writeTemp(KeyFile, seed)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, d.file(KeyFile)); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("identity: creating device key %s: %w", d.file(KeyFile), err)
	}
	return d.readKey()
}

// readKey reads and checks device.key.
func (d *Dir) readKey() (ed25519.PrivateKey, error) {
	path := d.file(KeyFile)
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("identity: reading device key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: reading device key: %w", err)
	}
	// Windows has no Unix mode bits; its ACLs come from the profile directory.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("identity: the device key %s can be read by other users (mode %04o), so it is no longer secret to them; "+
			"if nobody else uses this computer, run `chmod 600 %s`; otherwise remove it and log in again to make a new key", path, fi.Mode().Perm(), path)
	}
	if !fi.Mode().IsRegular() || fi.Size() != ed25519.SeedSize {
		return nil, fmt.Errorf("identity: the device key %s is not a %d-byte Ed25519 seed; remove it and log in again to make a new key", path, ed25519.SeedSize)
	}
	seed := make([]byte, ed25519.SeedSize)
	defer clear(seed)
	if _, err := f.ReadAt(seed, 0); err != nil {
		return nil, fmt.Errorf("identity: reading device key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// Fingerprint is how people compare keys: "sha256:" and the lowercase hex of
// the SHA-256 of the 32-byte public key.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "sha256:" + hex.EncodeToString(sum[:])
}
