package main

import (
	"crypto/sha256"
	"encoding/hex"
)

// sessionTag names a rendezvous server's session id in logs without
// revealing it: the id authorises TURN credentials (GET /v1/ice), so it
// must not be logged at INFO, yet a log still needs to tell one pairing
// from the next. Four hex digits of its SHA-256 do that and say nothing
// useful about the id.
func sessionTag(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:2])
}
