package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/assist-project/assist/invitation"
)

// maxCodeInput bounds what parseCode reads: a pasted URL with a code is a
// few dozen bytes.
const maxCodeInput = 2048

// parseCode reads what the expert typed or pasted: a short code, loosely
// typed as invitation.ParseWordCode allows ("7 Crayon Harbor"), or a link
// that carries one in its fragment ("https://SERVER/#7-crayon-harbor", the
// invitation URL `assist invite --server` prints). It returns the look-up
// id (also the invitation ID the handshake names) and the password. Errors
// wrap invitation.ErrBadCode and never repeat the input.
func parseCode(s string) (lookupID, password string, err error) {
	if len(s) > maxCodeInput {
		return "", "", fmt.Errorf("%w: that is too long for a code", invitation.ErrBadCode)
	}
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '#'); i >= 0 {
		s = s[i+1:]
		// A browser or a chat program may have escaped the spaces of a
		// loosely typed code.
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
	}
	if s == "" {
		return "", "", fmt.Errorf("%w: enter the code the other person gave you, like 42-maple-otter", invitation.ErrBadCode)
	}
	c, err := invitation.ParseWordCode(s)
	if err != nil {
		return "", "", err
	}
	return c.LookupID(), invitation.NormalizePassword(c.Password()), nil
}

// errBadDescription marks a connect call whose session descriptions name
// no certificate: the page's fault, or a browser that does not do DTLS.
var errBadDescription = errors.New("the browser's session description has no certificate fingerprint")
