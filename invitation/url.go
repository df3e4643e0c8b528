package invitation

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
)

const (
	urlPrefix = "assist://invite?d="
	// maxURLLen bounds ParseURL's input: the base64 of the largest valid
	// invitation is a few kilobytes.
	maxURLLen = 16 << 10
)

// URL returns the invitation as "assist://invite?d=" followed by the
// unpadded base64url encoding of its compact JSON document, for links and QR
// codes. It returns "" if the invitation's fields are invalid.
func (inv *Invitation) URL() string {
	var buf bytes.Buffer
	if err := inv.encode(&buf, ""); err != nil {
		return ""
	}
	return urlPrefix + base64.RawURLEncoding.EncodeToString(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// ParseURL decodes an invitation URL made by URL, with the same checks as
// Parse. Surrounding spaces are ignored, since URLs get pasted.
func ParseURL(s string) (*Invitation, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxURLLen {
		return nil, corrupt(fmt.Sprintf("the link is %d bytes, longer than any invitation", len(s)))
	}
	u, err := url.Parse(s)
	if err != nil || !strings.EqualFold(u.Scheme, "assist") || u.Host != "invite" || u.Path != "" || u.Fragment != "" {
		return nil, corrupt(`not an invitation link (want "` + urlPrefix + `...")`)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil || len(q) != 1 || len(q["d"]) != 1 {
		return nil, corrupt(`an invitation link has exactly one parameter, "d"`)
	}
	data, err := base64.RawURLEncoding.Strict().DecodeString(q.Get("d"))
	if err != nil {
		return nil, corrupt("the link's data is not unpadded base64url")
	}
	return Parse(data)
}
