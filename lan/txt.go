package lan

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/assist-project/assist/invitation"
)

// txtVersion is the version of the TXT record's fields; a record of
// another version is not read.
const txtVersion = "1"

// Bounds on a TXT record, far above what an honest agent sends (five
// fields, well under 200 bytes), so that a hostile one costs little.
const (
	maxTXTFields = 16
	maxTXTBytes  = 1300
)

// ErrBadTXT is returned (wrapped) by ParseTXT for a TXT record that is not
// an invitation's.
var ErrBadTXT = errors.New("lan: not an invitation's TXT record")

// TXT returns the TXT record's fields for inv: "v=1", "id=", "name=",
// "created=" and "expires=" (Unix seconds). The password is not among
// them: it never leaves the novice's computer.
func TXT(inv *invitation.Invitation) []string {
	return []string{
		"v=" + txtVersion,
		"id=" + inv.ID,
		"name=" + inv.Name,
		"created=" + strconv.FormatInt(inv.Created.Unix(), 10),
		"expires=" + strconv.FormatInt(inv.Expires.Unix(), 10),
	}
}

// ParseTXT reads the fields of a TXT record as TXT writes them and returns
// the invitation they describe, without addresses. Unknown keys are
// ignored (a later version may add some); a repeated key, a missing one, a
// version other than 1, or a value the invitation format refuses (see
// invitation.Invitation.Validate, which the caller runs with addresses) is
// an error. Errors wrap ErrBadTXT.
func ParseTXT(fields []string) (*invitation.Invitation, error) {
	if len(fields) > maxTXTFields {
		return nil, fmt.Errorf("%w: %d fields, at most %d", ErrBadTXT, len(fields), maxTXTFields)
	}
	total := 0
	vals := make(map[string]string, 5)
	for _, f := range fields {
		total += len(f)
		if total > maxTXTBytes {
			return nil, fmt.Errorf("%w: longer than %d bytes", ErrBadTXT, maxTXTBytes)
		}
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			// RFC 6763 6.4: a key without "=" is a boolean attribute;
			// none of ours is.
			continue
		}
		k = strings.ToLower(k)
		switch k {
		case "v", "id", "name", "created", "expires":
		default:
			continue
		}
		if _, dup := vals[k]; dup {
			return nil, fmt.Errorf("%w: %q twice", ErrBadTXT, k)
		}
		vals[k] = v
	}
	for _, k := range []string{"v", "id", "name", "created", "expires"} {
		if _, ok := vals[k]; !ok {
			return nil, fmt.Errorf("%w: no %q", ErrBadTXT, k)
		}
	}
	if vals["v"] != txtVersion {
		return nil, fmt.Errorf("%w: version %q, this Assist reads version %s: update Assist", ErrBadTXT, vals["v"], txtVersion)
	}
	created, err := unixTime(vals["created"])
	if err != nil {
		return nil, fmt.Errorf("%w: created: %v", ErrBadTXT, err)
	}
	expires, err := unixTime(vals["expires"])
	if err != nil {
		return nil, fmt.Errorf("%w: expires: %v", ErrBadTXT, err)
	}
	return &invitation.Invitation{
		Version: invitation.Version, ID: vals["id"], Name: vals["name"],
		Created: created, Expires: expires,
	}, nil
}

// unixTime reads decimal Unix seconds of years 1970 to 9999.
func unixTime(s string) (time.Time, error) {
	if s == "" || len(s) > 12 || strings.TrimLeft(s, "0123456789") != "" {
		return time.Time{}, errors.New("not Unix seconds")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > 253402300799 {
		return time.Time{}, errors.New("out of range")
	}
	return time.Unix(n, 0), nil
}
