package invitation

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/v1.assist from goldenInv")

const goldenPath = "testdata/v1.assist"

func readGolden(t *testing.T) []byte {
	t.Helper()
	data, err := readGoldenFile()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func readGoldenFile() ([]byte, error) { return os.ReadFile(goldenPath) }

// TestGolden keeps files written by format version 1 readable, and the
// writer's output stable, for ever. Regenerate with -update only when
// goldenInv itself changes, never to paper over a format change.
func TestGolden(t *testing.T) {
	inv := valid()
	out, err := inv.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(goldenPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden := readGolden(t)
	if !bytes.Equal(out, golden) {
		t.Errorf("Marshal changed the file format:\n got: %s\nwant: %s", out, golden)
	}
	got, err := Parse(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, inv) {
		t.Errorf("Parse(golden) = %+v, want %+v", got, inv)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Invitation)
	}{
		{"golden", func(*Invitation) {}},
		{"no server", func(i *Invitation) { i.Server = "" }},
		{"no addrs", func(i *Invitation) { i.Addrs = nil }},
		{"html chars and unicode", func(i *Invitation) { i.Name = `Zoë "Z" <z&z> 李\` }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := valid()
			tc.edit(inv)
			data, err := inv.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, inv) {
				t.Errorf("round trip = %+v, want %+v", got, inv)
			}
		})
	}
}

func TestRoundTripNew(t *testing.T) {
	now := time.Now()
	inv, err := New("Ada", time.Hour, []string{"10.1.2.3:4567"}, now)
	if err != nil {
		t.Fatal(err)
	}
	data, err := inv.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, inv) {
		t.Errorf("round trip = %+v, want %+v", got, inv)
	}
	if err := got.Validate(now); err != nil {
		t.Error(err)
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	inv := valid()
	inv.Name = "bad\x00name"
	if _, err := inv.Marshal(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Marshal = %v, want ErrInvalid", err)
	}
	if u := inv.URL(); u != "" {
		t.Errorf("URL = %q, want empty", u)
	}
}

func TestMarshalExpired(t *testing.T) {
	// An expired invitation is still a well-formed one: Marshal leaves the
	// time to Validate.
	if _, err := valid().Marshal(); err != nil {
		t.Fatal(err)
	}
}

// TestTruncated cuts the golden file at every byte: each prefix must fail
// with ErrCorrupt, and none may panic.
func TestTruncated(t *testing.T) {
	golden := readGolden(t)
	end := len(bytes.TrimRight(golden, "\n"))
	for i := 0; i < end; i++ {
		_, err := Parse(golden[:i])
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Parse(golden[:%d]) = %v, want ErrCorrupt", i, err)
		}
		if !strings.Contains(err.Error(), "ask the novice to send a new invitation") {
			t.Fatalf("Parse(golden[:%d]) message %q does not say what to do", i, err)
		}
	}
	_, err := Parse(golden[:end/2])
	if !strings.Contains(err.Error(), "ends too early") {
		t.Errorf("truncated message %q does not say it was cut short", err)
	}
}

// TestFlipped flips each byte of the golden file: the result must be
// refused or, when the change happens to stay valid (a letter of the name),
// parse to a valid invitation. Never a panic.
func TestFlipped(t *testing.T) {
	golden := readGolden(t)
	for i := range golden {
		for _, x := range []byte{0x01, 0x20, 0x80} {
			data := bytes.Clone(golden)
			data[i] ^= x
			inv, err := Parse(data)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
					t.Fatalf("flip %#x at %d: error %v wraps neither ErrCorrupt nor ErrUnsupportedVersion", x, i, err)
				}
				continue
			}
			if err := inv.checkFields(); err != nil {
				t.Fatalf("flip %#x at %d: parsed an invalid invitation: %v", x, i, err)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	golden := string(readGolden(t))
	replace := func(old, new string) string {
		if !strings.Contains(golden, old) {
			t.Fatalf("golden file lacks %q", old)
		}
		return strings.Replace(golden, old, new, 1)
	}
	for _, tc := range []struct {
		name   string
		data   string
		want   error
		substr string
	}{
		{"empty", "", ErrCorrupt, "damaged"},
		{"spaces", "  \n", ErrCorrupt, "damaged"},
		{"not JSON", "hello", ErrCorrupt, "invalid JSON"},
		{"array", "[1]", ErrCorrupt, "not a JSON object"},
		{"other JSON", `{"a": 1}`, ErrCorrupt, "not an Assist invitation"},
		{"wrong type", replace(`"assist-invitation"`, `"assist-foo"`), ErrCorrupt, "not an Assist invitation"},
		{"newer version", replace(`"version": 1`, `"version": 2`), ErrUnsupportedVersion, "upgrade assist"},
		{"newer version with new members", replace(`"version": 1,`, `"version": 7, "pake": "x",`), ErrUnsupportedVersion, "version 7"},
		{"version 0", replace(`"version": 1`, `"version": 0`), ErrCorrupt, "version"},
		{"version 1.0", replace(`"version": 1`, `"version": 1.0`), ErrCorrupt, "version"},
		{"version string", replace(`"version": 1`, `"version": "1"`), ErrCorrupt, "version"},
		{"version huge", replace(`"version": 1`, `"version": 1e400`), ErrCorrupt, "version"},
		{"no version", replace(`"version": 1,`, ``), ErrCorrupt, "missing"},
		{"unknown member", replace(`"version": 1,`, `"version": 1, "hash": "x",`), ErrCorrupt, `unknown member "hash"`},
		{"wrong case member", replace(`"name"`, `"Name"`), ErrCorrupt, `unknown member "Name"`},
		{"duplicate member", replace(`"version": 1,`, `"version": 1, "version": 1,`), ErrCorrupt, "twice"},
		{"duplicate name", replace(`"version": 1,`, `"version": 1, "name": "Mallory",`), ErrCorrupt, "twice"},
		{"null name", replace(`"Ada Lovelace"`, `null`), ErrCorrupt, "null"},
		{"null addrs", replace(`"addrs": [`, `"addrs": null, "x": [`), ErrCorrupt, ""},
		{"missing id", replace(`"id": "3hqzzb6ffd7n6dabdjdx2qtghm",`, ``), ErrCorrupt, `"id" is missing`},
		{"name number", replace(`"Ada Lovelace"`, `42`), ErrCorrupt, ""},
		{"bad time", replace(`"2025-03-01T09:30:00Z"`, `"yesterday"`), ErrCorrupt, "RFC 3339"},
		{"bad addr", replace(`"192.168.1.20:5500"`, `"192.168.1.20"`), ErrInvalid, "host:port"},
		{"control in name", replace(`"Ada Lovelace"`, `"Ada\u0007"`), ErrInvalid, "U+0007"},
		{"trailing data", golden + "{}", ErrCorrupt, ""},
		{"invalid UTF-8", replace("Ada", "Ad\xff"), ErrCorrupt, "UTF-8"},
		{"too large", golden + strings.Repeat(" ", MaxFileSize), ErrCorrupt, "larger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := Parse([]byte(tc.data))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse = %+v, %v; want %v", inv, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("message %q lacks %q", err, tc.substr)
			}
			if tc.want == ErrInvalid && !errors.Is(err, ErrCorrupt) {
				t.Errorf("field error %v does not also wrap ErrCorrupt", err)
			}
		})
	}
}

func TestParseAcceptsOtherWriters(t *testing.T) {
	// Another implementation may write compact JSON, members in another
	// order, times with an offset and fractions, and no trailing newline.
	data := `{"addrs":["10.0.0.1:5500"],"expires":"2025-03-01T14:30:00.9+01:00","created":"2025-03-01T09:30:00Z",` +
		`"name":"Ada","id":"3hqzzb6ffd7n6dabdjdx2qtghm","version":1,"type":"assist-invitation"}`
	inv, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(4 * time.Hour); !inv.Expires.Equal(want) || inv.Expires.Location() != time.UTC {
		t.Errorf("Expires = %v, want %v", inv.Expires, want)
	}
}
