package server

import (
	"testing"
	"time"
)

func TestTURNCredentials(t *testing.T) {
	// Computed independently: printf '%s' 1700000000:alice |
	// openssl dgst -sha1 -hmac secret -binary | base64
	name, cred := TURNCredentials("secret", "alice", time.Unix(1700000000, 0))
	if name != "1700000000:alice" || cred != "d8soP47RbdIKLDUOpnJPVQyq5Ts=" {
		t.Errorf("TURNCredentials = %q, %q", name, cred)
	}
}

func TestValidateICEURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"stun:relay.example.org:3478", true},
		{"stun:[2001:db8::1]:3478", true},
		{"turn:relay.example.org:3478?transport=udp", true},
		{"turn:relay.example.org:3478?transport=tcp", true},
		{"turns:relay.example.org:443?transport=tcp", true},
		{"turn:relay.example.org", true},
		{"http://relay.example.org", false},
		{"stun:", false},
		{"stun:host?transport=udp", false},
		{"turn:host?transport=sctp", false},
		{"turn:host/path", false},
		{"relay.example.org:3478", false},
	} {
		if err := ValidateICEURL(tc.url); (err == nil) != tc.ok {
			t.Errorf("ValidateICEURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}
