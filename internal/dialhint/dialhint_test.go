package dialhint

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
)

// TestExplain makes the real failures: a port nobody listens on, a TLS
// server with a certificate nobody signed, a name that cannot exist; and
// checks each gets its next step, with the cause still in the chain.
func TestExplain(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + ln.Addr().String()
	ln.Close()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()

	get := func(u string) error {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return fmt.Errorf("signal: dial: %w", err)
	}
	tests := []struct {
		name, url string
		want      string
	}{
		{"not running", closed, "is `assist serve` running at " + closed + "?"},
		{"unknown certificate", srv.URL, "run `assist login " + srv.URL + "`, or pass --server-fingerprint"},
		{"no such name", "https://assist.invalid:8443", "check the address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cause := get(tt.url)
			err := Explain(tt.url, cause)
			hint, inner, ok := Hint(fmt.Errorf("join: %w", err))
			if !ok || !strings.Contains(hint, tt.want) {
				t.Fatalf("hint %q (%v), want %q; error %v", hint, ok, tt.want, err)
			}
			if inner != cause || !errors.Is(err, cause) {
				t.Errorf("the cause is lost: %v", inner)
			}
			if !strings.HasPrefix(err.Error(), hint) || !strings.Contains(err.Error(), cause.Error()) {
				t.Errorf("error %q, want the hint then the cause", err)
			}
		})
	}
	if errors.Is(Explain(closed, get(closed)), syscall.ECONNREFUSED) != true {
		t.Error("errors.Is no longer sees ECONNREFUSED")
	}
	other := errors.New("the server said no")
	if got := Explain(srv.URL, other); got != other {
		t.Errorf("another error came back as %v", got)
	}
	if _, _, ok := Hint(other); ok {
		t.Error("a hint for an error Explain did not touch")
	}
	if Explain(srv.URL, nil) != nil {
		t.Error("nil is not nil")
	}
}
