package relay

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // SHA-1 is mandated by the TURN REST credential scheme.
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxUsernameLen bounds the work spent on a username from the network;
// RFC 8489 limits USERNAME to 513 bytes.
const maxUsernameLen = 513

var (
	errBadUsername = errors.New("relay: username is not \"<unix expiry>:<id>\"")
	errExpired     = errors.New("relay: credentials expired")
)

// Credentials returns short-lived TURN credentials in the "TURN REST API"
// scheme (draft-uberti-behave-turn-rest) that coturn implements with
// --use-auth-secret/--static-auth-secret: the username is
// "<unix expiry>:<session>" and the password is
// base64(HMAC-SHA1(secret, username)). Because the scheme is shared, an
// operator can point clients at coturn configured with the same secret.
// The expiry is now+ttl, truncated to whole seconds.
func Credentials(secret []byte, session string, ttl time.Duration, now time.Time) (username, password string) {
	username = strconv.FormatInt(now.Add(ttl).Unix(), 10) + ":" + session
	return username, restPassword(secret, username)
}

// restPassword derives the REST password of username.
func restPassword(secret []byte, username string) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username)) // hash.Hash.Write never fails
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// parseExpiry extracts the expiry of a REST username. Like coturn, the
// timestamp is everything before the first ':' (a bare timestamp is
// accepted too); the rest is an opaque id.
func parseExpiry(username string) (time.Time, error) {
	if len(username) > maxUsernameLen {
		return time.Time{}, fmt.Errorf("%w: %d bytes", errBadUsername, len(username))
	}
	ts, _, _ := strings.Cut(username, ":")
	// ParseInt also accepts a sign; an expiry is a plain decimal number.
	if ts == "" || ts[0] < '0' || ts[0] > '9' {
		return time.Time{}, errBadUsername
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %w", errBadUsername, err)
	}
	return time.Unix(secs, 0), nil
}

// checkUsername validates a REST username at time now and returns the
// password the client must prove knowledge of.
func checkUsername(secret []byte, username string, now time.Time) (password string, err error) {
	expiry, err := parseExpiry(username)
	if err != nil {
		return "", err
	}
	if now.After(expiry) {
		return "", fmt.Errorf("%w at %s", errExpired, expiry.UTC().Format(time.RFC3339))
	}
	return restPassword(secret, username), nil
}
