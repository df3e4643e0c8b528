package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestDirFrom(t *testing.T) {
	home := func() (string, error) { return "/home/ada", nil }
	noHome := func() (string, error) { return "", errors.New("no home") }
	userConfig := func() (string, error) { return "/cfg", nil }
	for _, tc := range []struct {
		name    string
		env     map[string]string
		home    func() (string, error)
		want    string
		wantErr string
	}{
		{"override", map[string]string{EnvConfigDir: "/tmp/a/", "XDG_CONFIG_HOME": "/x"}, home, "/tmp/a", ""},
		{"xdg", map[string]string{"XDG_CONFIG_HOME": "/x"}, home, "/x/assist", ""},
		{"relative xdg is ignored", map[string]string{"XDG_CONFIG_HOME": "rel"}, home, "/home/ada/.config/assist", ""},
		{"home", nil, home, "/home/ada/.config/assist", ""},
		{"no home", nil, noHome, "", EnvConfigDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dirFrom(func(k string) string { return tc.env[k] }, tc.home, userConfig)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("dirFrom = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestOpenCreatesPrivateDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "assist")
	t.Setenv(EnvConfigDir, path)
	d, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	if d.Path() != path {
		t.Errorf("Path = %q, want %q", d.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("config dir mode %04o, want 0700", fi.Mode().Perm())
	}
}

func TestDeviceKey(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k1, err := d.DeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(d.Path(), KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != ed25519.SeedSize {
		t.Errorf("device.key mode %04o size %d, want 0600 and %d", fi.Mode().Perm(), fi.Size(), ed25519.SeedSize)
	}
	k2, err := d.DeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Error("DeviceKey made a new key although one existed")
	}
	// Nothing but the key is left in the directory.
	ents, _ := os.ReadDir(d.Path())
	if len(ents) != 1 {
		t.Errorf("config dir holds %d entries, want only device.key", len(ents))
	}
}

// TestDeviceKeyConcurrent: processes racing to create the key agree on one.
func TestDeviceKeyConcurrent(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	keys := make([]ed25519.PrivateKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d, err := Open(dir)
			if err != nil {
				errs[i] = err
				return
			}
			keys[i], errs[i] = d.DeviceKey()
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !keys[i].Equal(keys[0]) {
			t.Fatalf("caller %d got a different key", i)
		}
	}
}

func TestDeviceKeyRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    []byte
		mode    os.FileMode
		wantErr string
	}{
		{"readable by group", bytes.Repeat([]byte{1}, 32), 0o640, "chmod 600"},
		{"readable by all", bytes.Repeat([]byte{1}, 32), 0o644, "can be read by other users"},
		{"writable by others", bytes.Repeat([]byte{1}, 32), 0o602, "chmod 600"},
		{"short", []byte("short"), 0o600, "not a 32-byte Ed25519 seed"},
		{"long", bytes.Repeat([]byte{1}, 64), 0o600, "not a 32-byte Ed25519 seed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(d.Path(), KeyFile)
			if err := os.WriteFile(path, tc.data, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			_, err = d.DeviceKey()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("DeviceKey = %v, want an error naming %s and saying %q", err, path, tc.wantErr)
			}
			// The refused file is left as it was: the user decides.
			if got, _ := os.ReadFile(path); !bytes.Equal(got, tc.data) {
				t.Error("DeviceKey changed the refused key file")
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	// The all-zero key's SHA-256, computed with sha256sum.
	pub := make(ed25519.PublicKey, 32)
	const want = "sha256:66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
	if got := Fingerprint(pub); got != want {
		t.Errorf("Fingerprint = %s, want %s", got, want)
	}
}

func TestConfigRoundTrip(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.Server != "" || len(c.Contacts) != 0 {
		t.Fatalf("a missing config loads as %+v, want empty", c)
	}
	k1 := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)).Public().(ed25519.PublicKey)
	k2 := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32)).Public().(ed25519.PublicKey)
	c.Server = "https://assist.example:8443"
	c.Fingerprint = "SHA256:" + strings.Repeat("AB:", 31) + "AB"
	if _, err := CanonicalCertFingerprint(c.Fingerprint); err == nil {
		t.Fatal("the prefix is case-sensitive")
	}
	c.Fingerprint = "sha256:" + strings.Repeat("AB:", 31) + "AB"
	c.User, c.Display = "ada", "Ada Lovelace"
	if !c.Pin("bob", "Bob", k1) || c.Pin("bob", "", k1) || !c.Pin("bob", "", k2) {
		t.Error("Pin did not report new keys as new and old as old")
	}
	c.Pin("carol", "Carol", k2)
	c.Forget("carol")
	if err := d.SaveConfig(c); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(d.Path(), ConfigFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.json: %v mode %v, want 0600", err, fi.Mode().Perm())
	}
	got, err := d.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if got.Fingerprint != "sha256:"+strings.Repeat("ab", 32) {
		t.Errorf("fingerprint saved as %q, want canonical lowercase", got.Fingerprint)
	}
	if got.Server != c.Server || got.User != "ada" || got.Display != "Ada Lovelace" || got.Contacts["bob"].Display != "Bob" {
		t.Errorf("loaded %+v", got)
	}
	if _, ok := got.Contacts["carol"]; ok {
		t.Error("a forgotten contact came back")
	}
	pinned := got.Pinned("bob")
	if len(pinned) != 2 || !pinned[0].Equal(k1) || !pinned[1].Equal(k2) {
		t.Errorf("Pinned(bob) = %x", pinned)
	}
	if got.Pinned("nobody") != nil {
		t.Error("an unknown user has pinned keys")
	}
	ents, _ := os.ReadDir(d.Path())
	if len(ents) != 1 {
		t.Errorf("temporary files left: %d entries", len(ents))
	}
}

func TestParseConfigRejects(t *testing.T) {
	for _, tc := range []struct{ name, data, wantErr string }{
		{"not json", `{`, "not a valid config"},
		{"unknown member", `{"servr":"x"}`, "not a valid config"},
		{"wrong type", `{"server":1}`, "not a valid config"},
		{"trailing data", `{} {}`, "data after"},
		{"bad fingerprint", `{"fingerprint":"sha256:abc"}`, "not a certificate fingerprint"},
		{"bad key", `{"contacts":{"bob":{"keys":["AAAA"]}}}`, "not a base64url Ed25519 public key"},
		{"padded key", `{"contacts":{"bob":{"keys":["` + EncodeKey(make([]byte, 32)) + `="]}}}`, "not a base64url"},
		{"empty contact name", `{"contacts":{"":{"keys":[]}}}`, "empty name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseConfig(%s) = %v, want %q", tc.data, err, tc.wantErr)
			}
		})
	}
}

func TestLoadConfigNamesFile(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d.Path(), ConfigFile)
	os.WriteFile(path, []byte(`{"server":`), 0o600)
	if _, err := d.LoadConfig(); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("LoadConfig = %v, want an error naming %s", err, path)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"server":"https://x","fingerprint":"sha256:` + strings.Repeat("00", 32) + `","user":"a","contacts":{"b":{"display":"B","keys":["` + EncodeKey(make([]byte, 32)) + `"]}}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		for u := range c.Contacts {
			if len(c.Pinned(u)) != len(c.Contacts[u].Keys) {
				t.Fatal("a key that passed the check does not parse")
			}
		}
	})
}
