package localpage

import (
	"net"
	"net/http/httptest"
	"testing"
)

func TestLoopbackHost(t *testing.T) {
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"127.0.0.1:80", true},
		{"127.9.9.9:1", true},
		{"[::1]:8080", true},
		{"localhost:5", true},
		{"LocalHost:5", true},
		{"[::ffff:127.0.0.1]:5", true},
		{"127.0.0.1", false}, // no port: not what a browser sends
		{"evil.example:80", false},
		{"localhost.evil.example:80", false},
		{"10.0.0.1:80", false},
		{"[fe80::1%lo]:80", false},
		{"", false},
	} {
		if got := loopbackHost(tt.host); got != tt.want {
			t.Errorf("loopbackHost(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestGuardAuthorize(t *testing.T) {
	g, err := NewGuard()
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewGuard()
	if err != nil {
		t.Fatal(err)
	}
	if g.Secret() == other.Secret() || len(g.Secret()) != 43 {
		t.Fatalf("secrets %q and %q: want two distinct 43-character ones", g.Secret(), other.Secret())
	}
	sec := g.Secret()
	for _, tt := range []struct {
		name, host, path string
		rest             string
		ok               bool
	}{
		{"page", "127.0.0.1:1", "/s/" + sec + "/", "", true},
		{"file", "localhost:1", "/s/" + sec + "/a.js", "a.js", true},
		{"no slash", "127.0.0.1:1", "/s/" + sec, "", false},
		{"other secret", "127.0.0.1:1", "/s/" + other.Secret() + "/", "", false},
		{"prefix of secret", "127.0.0.1:1", "/s/" + sec[:42] + "/", "", false},
		{"rebinding host", "evil.example:1", "/s/" + sec + "/", "", false},
		{"no /s/", "127.0.0.1:1", "/" + sec + "/", "", false},
	} {
		r := httptest.NewRequest("GET", "http://x"+tt.path, nil)
		r.Host = tt.host
		rest, ok := g.Authorize(r)
		if ok != tt.ok || rest != tt.rest {
			t.Errorf("%s: Authorize = %q, %v; want %q, %v", tt.name, rest, ok, tt.rest, tt.ok)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	if err := CheckLoopback(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, "why"); err != nil {
		t.Errorf("127.0.0.1: %v", err)
	}
	for _, a := range []net.Addr{
		&net.TCPAddr{IP: net.IPv4zero, Port: 1},
		&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1},
		&net.UnixAddr{Name: "/tmp/x", Net: "unix"},
	} {
		if err := CheckLoopback(a, "why"); err == nil {
			t.Errorf("%v: accepted", a)
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"}, // é is two bytes: not split
		{"", 0, ""},
	} {
		if got := Truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
