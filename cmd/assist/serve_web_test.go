package main

import (
	"net"
	"strconv"
	"testing"
)

func TestRelyingParty(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	for _, c := range []struct{ public, host, origin string }{
		{"", "localhost", "https://localhost:" + itoa(port)},
		{"https://assist.example.org:8443", "assist.example.org", "https://assist.example.org:8443"},
		{"https://assist.example.org", "assist.example.org", "https://assist.example.org"},
		{"https://192.0.2.7:8443", "192.0.2.7", "https://192.0.2.7:8443"},
	} {
		host, origin := relyingParty(ln, c.public)
		if host != c.host || origin != c.origin {
			t.Errorf("--public-url %q: %s %s, want %s %s", c.public, host, origin, c.host, c.origin)
		}
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }
