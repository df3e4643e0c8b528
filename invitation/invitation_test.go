package invitation

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	t0 = time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
	// goldenInv is the invitation stored in testdata/v1.assist.
	goldenInv = Invitation{
		Version: 1,
		ID:      "3hqzzb6ffd7n6dabdjdx2qtghm",
		Name:    "Ada Lovelace",
		Created: t0,
		Expires: t0.Add(4 * time.Hour),
		Addrs:   []string{"192.168.1.20:5500", "[2001:db8::20]:5500", "203.0.113.7:41234", "ada-pc.example.org:5500"},
		Server:  "https://assist.example.org",
	}
)

// valid returns a fresh copy of goldenInv that tests may modify.
func valid() *Invitation {
	inv := goldenInv
	inv.Addrs = append([]string(nil), goldenInv.Addrs...)
	return &inv
}

func TestNew(t *testing.T) {
	now := time.Date(2025, 3, 1, 9, 30, 0, 123456789, time.FixedZone("CET", 3600))
	inv, err := New("  Ada  ", time.Hour, []string{"10.0.0.2:5500", "10.0.0.2:5500", "[::1]:5500", "Host.Example:80"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Version != Version || inv.Name != "Ada" {
		t.Errorf("Version, Name = %d, %q", inv.Version, inv.Name)
	}
	if err := checkID(inv.ID); err != nil {
		t.Errorf("ID %q: %v", inv.ID, err)
	}
	wantCreated := time.Date(2025, 3, 1, 8, 30, 0, 0, time.UTC)
	if !inv.Created.Equal(wantCreated) || inv.Created.Location() != time.UTC || !inv.Expires.Equal(wantCreated.Add(time.Hour)) {
		t.Errorf("Created, Expires = %v, %v", inv.Created, inv.Expires)
	}
	wantAddrs := []string{"10.0.0.2:5500", "[::1]:5500", "host.example:80"}
	if !reflect.DeepEqual(inv.Addrs, wantAddrs) {
		t.Errorf("Addrs = %q, want %q", inv.Addrs, wantAddrs)
	}
	if err := inv.Validate(now); err != nil {
		t.Errorf("Validate: %v", err)
	}
	other, err := New("Ada", time.Hour, []string{"10.0.0.2:5500"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if other.ID == inv.ID {
		t.Error("two invitations share an ID")
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nm    string
		ttl   time.Duration
		addrs []string
	}{
		{"ttl too short", "Ada", time.Second, []string{"10.0.0.2:1"}},
		{"ttl too long", "Ada", MaxTTL + time.Hour, []string{"10.0.0.2:1"}},
		{"no addrs", "Ada", time.Hour, nil},
		{"bad addr", "Ada", time.Hour, []string{"10.0.0.2"}},
		{"empty name", "  ", time.Hour, []string{"10.0.0.2:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.nm, tc.ttl, tc.addrs, t0)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	now := t0.Add(time.Hour)
	many := make([]string, MaxAddrs+1)
	for i := range many {
		many[i] = "10.0.0.1:" + string(rune('1'+i%9)) + strings.Repeat("0", i/9+1)
	}
	for _, tc := range []struct {
		name   string
		edit   func(*Invitation)
		now    time.Time
		want   error  // nil for success
		substr string // in the message
	}{
		{"ok", func(*Invitation) {}, now, nil, ""},
		{"ok just created", func(*Invitation) {}, t0, nil, ""},
		{"ok clock skew", func(*Invitation) {}, t0.Add(-MaxClockSkew), nil, ""},
		{"ok addrs only", func(i *Invitation) { i.Server = "" }, now, nil, ""},
		{"ok server only", func(i *Invitation) { i.Addrs = nil }, now, nil, ""},
		{"ok 16 addrs", func(i *Invitation) { i.Addrs = many[:MaxAddrs] }, now, nil, ""},
		{"ok 64 rune name", func(i *Invitation) { i.Name = strings.Repeat("é", 64) }, now, nil, ""},
		{"ok unicode name", func(i *Invitation) { i.Name = "Zoë 李 <&>" }, now, nil, ""},
		{"expired", func(*Invitation) {}, t0.Add(4 * time.Hour), ErrExpired, "expired at 2025-03-01 13:30:00 UTC (0s ago); ask Ada Lovelace for a new invitation"},
		{"long expired", func(*Invitation) {}, t0.Add(28 * time.Hour), ErrExpired, "(24h0m0s ago)"},
		{"future created", func(*Invitation) {}, t0.Add(-MaxClockSkew - time.Second), ErrInvalid, "in the future"},
		{"newer version", func(i *Invitation) { i.Version = 2 }, now, ErrUnsupportedVersion, "upgrade assist"},
		{"version 0", func(i *Invitation) { i.Version = 0 }, now, ErrInvalid, "version 0"},
		{"empty id", func(i *Invitation) { i.ID = "" }, now, ErrInvalid, "id"},
		{"upper-case id", func(i *Invitation) { i.ID = strings.ToUpper(i.ID) }, now, ErrInvalid, "id"},
		{"short id", func(i *Invitation) { i.ID = i.ID[1:] }, now, ErrInvalid, "id"},
		{"non-canonical id", func(i *Invitation) { i.ID = i.ID[:25] + "n" }, now, ErrInvalid, "canonical"},
		{"empty name", func(i *Invitation) { i.Name = "" }, now, ErrInvalid, "name"},
		{"long name", func(i *Invitation) { i.Name = strings.Repeat("a", 65) }, now, ErrInvalid, "65 characters"},
		{"control char in name", func(i *Invitation) { i.Name = "Ada\x1b[2J" }, now, ErrInvalid, "U+001B"},
		{"newline in name", func(i *Invitation) { i.Name = "Ada\nBob" }, now, ErrInvalid, "unprintable"},
		{"bidi override in name", func(i *Invitation) { i.Name = "Ada\u202eecilA" }, now, ErrInvalid, "U+202E"},
		{"invalid UTF-8 name", func(i *Invitation) { i.Name = "Ada\xff" }, now, ErrInvalid, "UTF-8"},
		{"padded name", func(i *Invitation) { i.Name = " Ada" }, now, ErrInvalid, "spaces"},
		{"zero times", func(i *Invitation) { i.Created, i.Expires = time.Time{}, time.Time{} }, now, ErrInvalid, "missing"},
		{"year 10000", func(i *Invitation) { i.Expires = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, now, ErrInvalid, "year"},
		{"expires before created", func(i *Invitation) { i.Expires = i.Created }, now, ErrInvalid, "not after"},
		{"too long lifetime", func(i *Invitation) { i.Expires = i.Created.Add(MaxTTL + time.Second) }, now, ErrInvalid, "lifetime"},
		{"too many addrs", func(i *Invitation) { i.Addrs = many }, now, ErrInvalid, "17 addresses"},
		{"no addrs no server", func(i *Invitation) { i.Addrs, i.Server = nil, "" }, now, ErrInvalid, "nowhere"},
		{"duplicate addr", func(i *Invitation) { i.Addrs = []string{"[2001:db8::1]:5", "[2001:DB8:0::1]:5"} }, now, ErrInvalid, "duplicate"},
		{"server http", func(i *Invitation) { i.Server = "http://10.0.0.1:8080/x" }, now, nil, ""},
		{"server ftp", func(i *Invitation) { i.Server = "ftp://example.org" }, now, ErrInvalid, "scheme"},
		{"server credentials", func(i *Invitation) { i.Server = "https://u:p@example.org" }, now, ErrInvalid, "password"},
		{"server no host", func(i *Invitation) { i.Server = "https:///x" }, now, ErrInvalid, "host"},
		{"server fragment", func(i *Invitation) { i.Server = "https://example.org/#x" }, now, ErrInvalid, "fragment"},
		{"server space", func(i *Invitation) { i.Server = "https://example.org/ x" }, now, ErrInvalid, "spaces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := valid()
			tc.edit(inv)
			err := inv.Validate(tc.now)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Validate = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("message %q lacks %q", err, tc.substr)
			}
		})
	}
}

func TestAddrs(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" for an error
	}{
		{"192.168.1.2:5500", "192.168.1.2:5500"},
		{"127.0.0.1:1", "127.0.0.1:1"},
		{"[::1]:65535", "[::1]:65535"},
		{"[2001:DB8:0:0::1]:80", "[2001:db8::1]:80"},
		{"[::ffff:10.0.0.1]:80", "[::ffff:10.0.0.1]:80"},
		{"Novice-PC:5500", "novice-pc:5500"},
		{"a.example.org.:443", "a.example.org.:443"},
		{"xn--bcher-kva.example:443", "xn--bcher-kva.example:443"},
		{"192.168.1.2", ""},
		{"192.168.1.2:0", ""},
		{"192.168.1.2:65536", ""},
		{"192.168.1.2:080", ""},
		{"192.168.1.2:+80", ""},
		{"192.168.1.2:http", ""},
		{"0.0.0.0:80", ""},
		{"[::]:80", ""},
		{"224.0.0.1:80", ""},
		{"[fe80::1%eth0]:80", ""},
		{"[1.2.3.4]:80", ""},
		{"[host]:80", ""},
		{"::1:80", ""},
		{"1.2.3:80", ""},
		{"300.1.1.1:80", ""},
		{"-host:80", ""},
		{"ho_st:80", ""},
		{"a..b:80", ""},
		{"bücher.example:80", ""},
		{":80", ""},
		{"host :80", ""},
		{strings.Repeat("a", 64) + ".example:80", ""},
	} {
		got, err := canonicalAddr(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("canonicalAddr(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("canonicalAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestNoPasswordFields guards the invariant that an invitation carries
// nothing derived from the password: no field may even be named like one.
// The API takes no password, so the only way to break this is to add such a
// field, which this test catches.
func TestNoPasswordFields(t *testing.T) {
	forbidden := []string{"pass", "pwd", "hash", "salt", "verif", "secret", "key", "mac", "token", "digest", "proof"}
	for _, typ := range []reflect.Type{reflect.TypeFor[Invitation](), reflect.TypeFor[wire]()} {
		for f := range typ.Fields() {
			names := []string{strings.ToLower(f.Name), strings.ToLower(f.Tag.Get("json"))}
			for _, n := range names {
				for _, bad := range forbidden {
					if strings.Contains(n, bad) {
						t.Errorf("%v has field %s (%q), which looks password-derived", typ, f.Name, n)
					}
				}
			}
		}
	}
	// The file holds exactly the members listed in v1Members, which the
	// wire type defines.
	if got, want := reflect.TypeFor[wire]().NumField(), len(v1Members); got != want {
		t.Errorf("wire has %d fields, v1Members %d", got, want)
	}
}

func TestSessionID(t *testing.T) {
	if got := string(valid().SessionID()); got != goldenInv.ID {
		t.Errorf("SessionID = %q", got)
	}
}
