package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// maxConfigSize bounds config.json: thousands of contacts fit.
const maxConfigSize = 4 << 20

// Config is config.json: where this device logs in and whom it trusts.
type Config struct {
	// Server is the messenger server's URL, saved by `assist login`.
	Server string `json:"server,omitempty"`
	// Fingerprint pins the server's TLS certificate: "sha256:" and the
	// lowercase hex of the SHA-256 of its leaf certificate.
	Fingerprint string `json:"fingerprint,omitempty"`
	// User is the account name on Server.
	User string `json:"user,omitempty"`
	// Display is the account's display name.
	Display string `json:"display,omitempty"`
	// Contacts maps a contact's user name to the keys pinned for it.
	Contacts map[string]Contact `json:"contacts,omitempty"`
}

// Contact is one pinned contact.
type Contact struct {
	Display string `json:"display,omitempty"`
	// Keys are the contact's device public keys confirmed by pairing, as
	// base64url without padding. A device certified by one of them is
	// trusted too (package pairing checks the chain).
	Keys []string `json:"keys"`
}

// LoadConfig reads config.json. A missing file is an empty Config: nothing
// has been saved yet.
func (d *Dir) LoadConfig() (*Config, error) {
	path := d.file(ConfigFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("identity: reading %s: %w", path, err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w; fix or remove the file, then log in again", path, err)
	}
	return c, nil
}

// ParseConfig parses and checks the contents of a config.json.
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("config is over %d bytes", maxConfigSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("not a valid config: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not a valid config: data after the JSON object")
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return &c, nil
}

// check validates what later code relies on.
func (c *Config) check() error {
	if c.Fingerprint != "" {
		fp, err := CanonicalCertFingerprint(c.Fingerprint)
		if err != nil {
			return err
		}
		c.Fingerprint = fp
	}
	for user, ct := range c.Contacts {
		if user == "" {
			return errors.New("a contact has an empty name")
		}
		for _, k := range ct.Keys {
			if _, err := ParseKey(k); err != nil {
				return fmt.Errorf("contact %s: %w", user, err)
			}
		}
	}
	return nil
}

// SaveConfig writes config.json atomically, readable by the owner only.
func (d *Dir) SaveConfig(c *Config) error {
	if err := c.check(); err != nil {
		return fmt.Errorf("identity: not saving config: %w", err)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("identity: encoding config: %w", err)
	}
	return d.writeAtomic(ConfigFile, append(data, '\n'))
}

// Pin records key as a confirmed key of contact user and returns whether it
// was new. display replaces the contact's display name when not empty.
func (c *Config) Pin(user, display string, key ed25519.PublicKey) bool {
	if c.Contacts == nil {
		c.Contacts = make(map[string]Contact)
	}
	ct := c.Contacts[user]
	if display != "" {
		ct.Display = display
	}
	k := EncodeKey(key)
	added := !slices.Contains(ct.Keys, k)
	if added {
		ct.Keys = append(ct.Keys, k)
	}
	c.Contacts[user] = ct
	return added
}

// Forget drops a contact and its pinned keys.
func (c *Config) Forget(user string) {
	delete(c.Contacts, user)
}

// Pinned returns the keys pinned for user; none for an unknown user.
func (c *Config) Pinned(user string) []ed25519.PublicKey {
	ct, ok := c.Contacts[user]
	if !ok {
		return nil
	}
	keys := make([]ed25519.PublicKey, 0, len(ct.Keys))
	for _, s := range ct.Keys {
		if k, err := ParseKey(s); err == nil { // checked when loaded
			keys = append(keys, k)
		}
	}
	return keys
}

// EncodeKey encodes a public key as the messenger protocol does: base64url
// without padding.
func EncodeKey(pub ed25519.PublicKey) string {
	return base64.RawURLEncoding.EncodeToString(pub)
}

// ParseKey decodes a public key written by EncodeKey.
func ParseKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%q is not a base64url Ed25519 public key", s)
	}
	return ed25519.PublicKey(b), nil
}

// CanonicalCertFingerprint checks a certificate pin "sha256:HEX" (64 hex
// digits, either case; colons between bytes are allowed, as browsers show
// them) and returns it as "assist serve" prints it: "sha256:" and lowercase
// hex.
func CanonicalCertFingerprint(s string) (string, error) {
	h, ok := strings.CutPrefix(strings.TrimSpace(s), "sha256:")
	if ok {
		h = strings.ReplaceAll(h, ":", "")
	}
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != 32 {
		return "", fmt.Errorf("%q is not a certificate fingerprint: want sha256: and 64 hex digits, as `assist serve` prints", s)
	}
	return "sha256:" + hex.EncodeToString(b), nil
}
