package invitation

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxServerLen bounds the server URL; real ones are far shorter.
const maxServerLen = 2048

func checkID(id string) error {
	if len(id) != idEncoding.EncodedLen(idBytes) {
		return fmt.Errorf("%d characters, want %d", len(id), idEncoding.EncodedLen(idBytes))
	}
	raw, err := idEncoding.DecodeString(id)
	if err != nil {
		return errors.New("not lower-case base32")
	}
	// base32 ignores the unused low bits of the last character; requiring
	// the canonical spelling keeps one id from having several.
	if idEncoding.EncodeToString(raw) != id {
		return errors.New("not in canonical form")
	}
	return nil
}

func checkName(name string) error {
	if !utf8.ValidString(name) {
		return errors.New("not valid UTF-8")
	}
	if name == "" {
		return errors.New("empty")
	}
	if n := utf8.RuneCountInString(name); n > MaxNameRunes {
		return fmt.Errorf("%d characters, at most %d allowed", n, MaxNameRunes)
	}
	if strings.TrimSpace(name) != name {
		return errors.New("has surrounding spaces")
	}
	// IsPrint excludes control and format characters, so a name cannot hide
	// text behind bidirectional overrides or break a terminal.
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("contains the unprintable character %U", r)
		}
	}
	return nil
}

func checkTimes(created, expires time.Time) error {
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"created", created}, {"expires", expires}} {
		if t.t.IsZero() {
			return fmt.Errorf("%s: missing", t.name)
		}
		// RFC 3339 has four-digit years only.
		if y := t.t.UTC().Year(); y < 1 || y > 9999 {
			return fmt.Errorf("%s: year %d out of range", t.name, y)
		}
	}
	if !expires.After(created) {
		return fmt.Errorf("expires (%s) is not after created (%s)", formatHuman(expires), formatHuman(created))
	}
	if d := expires.Sub(created); d > MaxTTL {
		return fmt.Errorf("lifetime %v is longer than %v", d, MaxTTL)
	}
	return nil
}

func checkAddrs(addrs []string) error {
	if len(addrs) > MaxAddrs {
		return fmt.Errorf("%d addresses, at most %d allowed", len(addrs), MaxAddrs)
	}
	seen := make(map[string]bool, len(addrs))
	for i, a := range addrs {
		c, err := canonicalAddr(a)
		if err != nil {
			return fmt.Errorf("address %d %q: %v", i+1, a, err)
		}
		if seen[c] {
			return fmt.Errorf("address %d %q: duplicate", i+1, a)
		}
		seen[c] = true
	}
	return nil
}

// canonicalAddr checks a "host:port" address and returns it in one spelling
// per endpoint (IP literals formatted by netip, host names in lower case), so
// duplicates are found however they were written.
func canonicalAddr(a string) (string, error) {
	if len(a) > 300 {
		return "", errors.New("too long")
	}
	host, portStr, err := net.SplitHostPort(a)
	if err != nil {
		return "", errors.New(`not "host:port"`)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 || strconv.FormatUint(port, 10) != portStr {
		return "", fmt.Errorf("port %q is not a number from 1 to 65535", portStr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		switch {
		case ip.Zone() != "":
			// A zone names an interface of the novice's machine; it means
			// nothing, or something else, on the expert's.
			return "", errors.New("IPv6 zone not allowed")
		case ip.IsUnspecified():
			return "", errors.New("unspecified address")
		case ip.IsMulticast():
			return "", errors.New("multicast address")
		}
		if ip.Is4() && strings.Contains(a, "[") {
			return "", errors.New("IPv4 address in brackets")
		}
		return netip.AddrPortFrom(ip, uint16(port)).String(), nil
	}
	if strings.Contains(a, "[") {
		return "", fmt.Errorf("%q is not an IPv6 address", host)
	}
	if err := checkHostname(host); err != nil {
		return "", err
	}
	return net.JoinHostPort(strings.ToLower(host), portStr), nil
}

// checkHostname accepts DNS names made of letters, digits and hyphens
// (RFC 1123), which is what resolvers and routers' dynamic DNS hand out.
func checkHostname(h string) error {
	name := strings.TrimSuffix(h, ".")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("host %q is not a valid name", h)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("host %q is not a valid name", h)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("host %q is not a valid name", h)
			}
		}
	}
	// An all-digit last label is never a real top-level domain; refusing it
	// keeps malformed IPv4 addresses such as "1.2.3" or "300.1.1.1" from
	// passing as names.
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return fmt.Errorf("host %q is neither an IP address nor a name", h)
	}
	return nil
}

func checkServer(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > maxServerLen {
		return fmt.Errorf("%d bytes, at most %d allowed", len(s), maxServerLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return errors.New("contains spaces, control or non-ASCII characters")
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("scheme %q, want https", u.Scheme)
	case u.Host == "" || u.Opaque != "":
		return errors.New("no host")
	case u.User != nil:
		// Credentials have no place in a file that gets mailed around.
		return errors.New("user name or password in URL")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return errors.New("fragment in URL")
	}
	return nil
}
