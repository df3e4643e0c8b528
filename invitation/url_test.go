package invitation

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestURLRoundTrip(t *testing.T) {
	inv := valid()
	u := inv.URL()
	payload, ok := strings.CutPrefix(u, "assist://invite?d=")
	if !ok || strings.Trim(payload, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Fatalf("URL = %q, want assist://invite?d=<base64url>", u)
	}
	got, err := ParseURL("  " + u + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, inv) {
		t.Errorf("ParseURL = %+v, want %+v", got, inv)
	}
	if len(u) > 1000 {
		t.Errorf("URL is %d bytes; a QR code wants it short", len(u))
	}
}

func TestParseURLErrors(t *testing.T) {
	good := valid().URL()
	payload := strings.TrimPrefix(good, urlPrefix)
	for _, tc := range []struct {
		name string
		url  string
		want error
	}{
		{"empty", "", ErrCorrupt},
		{"https", "https://invite?d=" + payload, ErrCorrupt},
		{"other host", "assist://other?d=" + payload, ErrCorrupt},
		{"path", "assist://invite/x?d=" + payload, ErrCorrupt},
		{"fragment", good + "#x", ErrCorrupt},
		{"no d", "assist://invite?e=" + payload, ErrCorrupt},
		{"two d", good + "&d=" + payload, ErrCorrupt},
		{"extra param", good + "&x=1", ErrCorrupt},
		{"padded base64", good + "==", ErrCorrupt},
		{"std base64", urlPrefix + "a+/b", ErrCorrupt},
		{"truncated", good[:len(good)-10], ErrCorrupt},
		{"not JSON", urlPrefix + base64.RawURLEncoding.EncodeToString([]byte("hi")), ErrCorrupt},
		{"newer version", urlPrefix + base64.RawURLEncoding.EncodeToString([]byte(`{"type":"assist-invitation","version":2}`)), ErrUnsupportedVersion},
		{"too long", good + strings.Repeat("A", maxURLLen), ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseURL(tc.url); !errors.Is(err, tc.want) {
				t.Errorf("ParseURL = %v, want %v", err, tc.want)
			}
		})
	}
}
