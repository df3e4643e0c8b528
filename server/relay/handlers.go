package relay

import (
	"net"
	"strings"
	"time"

	"github.com/pion/turn/v5"

	"github.com/assist-project/assist/internal/ratelimit"
)

// authHandler checks REST credentials. It returns the username's id part
// (the session: "<expiry>:<session>") as the user id, so that quotas are
// per session: the rendezvous server hands a session fresh credentials,
// with a new expiry, on every GET /v1/ice, and each must not bring a quota
// of its own.
func (r *Relay) authHandler(secret []byte) turn.AuthHandler {
	return func(ra *turn.RequestAttributes) (string, []byte, bool) {
		password, err := checkUsername(secret, ra.Username, time.Now())
		if err != nil {
			r.authFailures.Add(1)
			r.log.Debug("relay: refused credentials", "src", ra.SrcAddr.String(), "method", ra.Method.String(), "err", err)
			return "", nil, false
		}
		// Pion then checks MESSAGE-INTEGRITY with this key; a wrong
		// password is reported through EventHandler.OnAuth.
		return userID(ra.Username), turn.GenerateAuthKey(ra.Username, ra.Realm, password), true
	}
}

// userID is the id part of a REST username, or all of it when it has none.
func userID(username string) string {
	if _, id, ok := strings.Cut(username, ":"); ok {
		return id
	}
	return username
}

// quotaHandler enforces the global, per-user and per-address allocation
// bounds. The check and the creation are not atomic, so concurrent Allocate
// requests can overshoot a bound by the number of listeners at most.
func (r *Relay) quotaHandler(maxTotal, maxPerUser, maxPerAddr int) turn.QuotaHandler {
	return func(username, _ string, src net.Addr) bool {
		r.mu.Lock()
		ok := r.allocs < maxTotal && r.perUser[username] < maxPerUser && r.perAddr[ratelimit.KeyOfNet(src)] < maxPerAddr
		r.mu.Unlock()
		if !ok {
			r.log.Info("relay: allocation quota reached", "src", src.String(), "user", username)
		}
		return ok
	}
}

// eventHandler keeps the allocation counts and the authentication
// failures that only pion sees (wrong passwords).
func (r *Relay) eventHandler() turn.EventHandler {
	return turn.EventHandler{
		OnAuth: func(src, _ net.Addr, _, username, _, method string, verdict bool) {
			if !verdict {
				r.authFailures.Add(1)
				r.log.Debug("relay: wrong password", "src", src.String(), "user", username, "method", method)
			}
		},
		OnAllocationCreated: func(src, _ net.Addr, protocol, userID, _ string, relayAddr net.Addr, _ int) {
			r.mu.Lock()
			if !r.closed {
				r.allocs++
				r.perUser[userID]++
				r.perAddr[ratelimit.KeyOfNet(src)]++
			}
			r.mu.Unlock()
			r.log.Debug("relay: allocation created", "src", src.String(), "transport", protocol, "relay", relayAddr.String())
		},
		OnAllocationDeleted: func(src, _ net.Addr, protocol, userID, _ string) {
			r.mu.Lock()
			if !r.closed {
				r.allocs--
				if r.perUser[userID]--; r.perUser[userID] <= 0 {
					delete(r.perUser, userID)
				}
				k := ratelimit.KeyOfNet(src)
				if r.perAddr[k]--; r.perAddr[k] <= 0 {
					delete(r.perAddr, k)
				}
			}
			r.mu.Unlock()
			r.log.Debug("relay: allocation deleted", "src", src.String(), "transport", protocol)
		},
	}
}

// permissionHandler applies the peer policy to CreatePermission and
// ChannelBind requests.
func (r *Relay) permissionHandler(allow func(net.IP) bool) turn.PermissionHandler {
	return func(client net.Addr, peer net.IP) bool {
		if allow(peer) {
			return true
		}
		r.log.Info("relay: peer refused", "src", client.String(), "peer", peer.String())
		return false
	}
}
