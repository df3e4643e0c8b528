// Package server is the rendezvous server behind "assist serve": it lets a
// novice's agent and an expert find each other by an invitation's look-up
// id, relays their signalling (PAKE messages, SDP offers and answers, ICE
// candidates) without interpreting it, and hands out short-lived TURN
// credentials. It never sees a password, a key or a frame: the two ends
// authenticate each other end to end over the relayed messages, so a
// server that tampers with them gets no session.
//
// # HTTP endpoints
//
//	GET /v1/signal   WebSocket upgrade: the signalling protocol below
//	GET /v1/ice      ?session=ID: the ICE servers of a live session, as JSON
//	GET /healthz     200 "ok" when the store answers, 503 otherwise
//	GET /readyz      200 "ok" when this node should get new clients: the
//	                 store and the Mesh (if any) answer and it is not
//	                 draining (Server.Drain); 503 "WHAT unavailable" or
//	                 "draining" otherwise. For load balancers
//	GET /metrics     Prometheus text format; loopback clients only unless
//	                 Config.MetricsPublic (403 otherwise)
//
// Every response over TLS carries Strict-Transport-Security.
//
// # Limits per address
//
// A client's address is the IP address its connection comes from
// (http.Request.RemoteAddr; X-Forwarded-For is not trusted), an IPv6
// address counting as its /64. Per address (defaults; see Config):
//
//   - at most 64 signalling connections at once; one more gets HTTP 429
//     with a plain-text message, before the WebSocket upgrade;
//   - a connection that has not registered, been paired or been queued
//     10 s after it opened is closed (status 1008, "register or join
//     within 10s"); a join that is refused does not count;
//   - registrations: 10 at once, then one a minute, and at most 20
//     registered novices connected at once;
//   - joins that find no live invitation: 10 at once, then one every 6 s.
//     While that allowance is spent, every join from the address, for a
//     live invitation or not, is refused before anything is looked up.
//     Joins that find one cost nothing from it; all joins together: 30 at
//     once, then one a second;
//   - one queued-or-paired expert per invitation;
//   - at most 4 live pairings with TURN credentials (see below).
//
// Refusals of registrations and joins are errors with code "too-many",
// whose message says when to try again; the connection stays open.
//
// # Signalling protocol
//
// Every message is one WebSocket text message holding one JSON object with
// a "type" member. Parsing is strict: unknown or misspelt members, missing
// required members, wrong JSON types, trailing data, binary messages,
// messages over 64 KiB and clients sending faster than the rate limit get an
// error message and the connection is closed (status 1008, or 1009 for
// size). Other errors leave the connection open.
//
// Client to server:
//
//	{"type":"register","id":ID,"expires":RFC3339,"owner":SECRET}  novice: offer the invitation ID
//	{"type":"join","id":ID}                         expert: pair with ID's novice
//	{"type":"relay","data":ANY,"session":ID}        either side, once paired
//	{"type":"bye","reason":TEXT,"session":ID}       either side: end the pairing
//
// "session" is optional: when given, a relay or bye for a pairing that is
// over (a late message of the previous expert's attempt) is dropped with
// "not-paired" instead of reaching or ending the current pairing.
//
// ID is 1 to 64 characters of [a-z0-9-]. "expires" must lie in the future
// and within the server's maximum invitation lifetime. "data" is any JSON
// value (an object, or a base64 string for binary); it must not be null.
// "reason" is optional, at most 256 bytes. "owner" is optional: 22 to 64
// characters of [A-Za-z0-9_-], the agent's secret for the id (128 random
// bits from NewOwner); the server keeps only its SHA-256.
//
// Server to client:
//
//	{"type":"registered","id":ID,"expires":RFC3339}
//	{"type":"paired","session":SESSION,"ice":[ICESERVER...]}  to the expert
//	{"type":"paired","session":SESSION,"ice":[ICESERVER...],"from":IP}  to the novice
//	{"type":"queued"}                   to the expert: it waits in line
//	{"type":"relay","data":ANY}         the peer's relay message; "data" byte for byte
//	{"type":"bye","reason":TEXT}        the peer ended the pairing
//	{"type":"peer-left"}                the peer's connection closed
//	{"type":"error","code":CODE,"message":TEXT}
//
// "from" is the expert's IP address as the server saw it (an IPv4 or IPv6
// address, no port, no zone), so the novice can be told where the expert
// comes from. Clients must ignore members they do not know.
//
// ICESERVER has the shape of WebRTC's RTCIceServer:
// {"urls":[URL...],"username":U,"credential":C}; TURN credentials follow the
// REST convention coturn also accepts (see [TURNCredentials]), valid for the
// server's credential lifetime. The same list is served by GET /v1/ice while
// the session is paired. TURN servers (and credentials) are in the list
// only for a pairing of two distinct addresses (an IPv6 /64 being one) of
// which neither is already party to MaxRelaysPerAddress live pairings that
// got them; otherwise it holds the STUN servers only, here and from GET
// /v1/ice.
//
// # Waiting in line
//
// A join for a live invitation whose novice is paired with another expert
// gets "queued": the expert waits in line (at most 8 per invitation, one
// per address) and gets "paired" as soon as the pairings before it end, or
// "busy" after 60 s. The expert of a pairing must send its first relay
// message within 5 s of "paired"; otherwise the server ends the pairing
// with {"type":"bye","reason":"timeout: the expert sent nothing"} to both
// sides and pairs the next in line. So nobody can hold an invitation by
// pairing and staying silent, and a second expert is never locked out.
//
// Error codes (the message is meant for people and may change):
//
//	malformed     not a valid message (closes the connection)
//	too-large     message over the size limit (closes the connection)
//	rate-limited  too many messages (closes the connection)
//	too-many      register or join: the address's allowance is spent (see
//	              Limits per address); the message says when to try again.
//	              The connection stays open
//	invalid       well-formed but unacceptable, e.g. expiry too far off
//	unexpected    not allowed in this state, e.g. join after register
//	taken         register: another connected novice holds this id
//	unknown       join: no live invitation with this id: none, expired, or
//	              its novice not connected, one answer and one message for
//	              all three
//	expired       register: the expiry has passed
//	busy          join: waited in line for 60 s, or the line is full
//	not-paired    relay or bye without a peer (e.g. the peer just left)
//	internal      the server failed; try again
//	unavailable   register: the server cannot reach its database (several
//	              nodes on PostgreSQL, which is restarting); nothing was
//	              stored, try again in a minute
//
// Deprecated but reserved (older servers sent them; clients may still
// handle them): "offline" (a join while the novice was not connected) and
// "expired" for a join.
//
// A registered invitation is stored, so it survives a server restart: the
// novice's agent reconnects and registers the same id again, and until then
// experts get "unknown". An invitation whose novice has not been connected
// for 10 minutes (Config.UnconnectedTTL; after a restart, counted from the
// start) is forgotten. An id that is stored but has no connected novice
// may be registered again only with the same "owner" until it expires
// (else "taken"), so nobody can squat on the number of a novice who is
// away; an id stored without an owner, or expired, may be taken over by
// anyone (the PAKE makes that worthless without the password). After "bye" or "peer-left" the novice stays
// registered and may be joined again, and the expert may join again.
//
// # Several nodes
//
// With a Mesh (Config.Mesh), several servers ("nodes") behind one load
// balancer act as one: the node a novice registered on is the
// invitation's home and pairs it; an expert who joins on another node has
// its messages forwarded to the home and the answers forwarded back, so
// the protocol above is unchanged for clients. Limits on joins are those
// of the expert's node, limits on pairings (line, relays) those of the
// home. GET /v1/ice answers on every node. When the home node goes away,
// the experts it paired get status 1001 ("going away") from their own
// node and join again; the novice's agent registers again on whichever
// node the balancer picks, taking its id over at once when it gives the
// same "owner" (otherwise once the old claim expires).
//
// Draining (Server.Drain, then Server.Disconnect; "assist serve" on
// SIGTERM): /readyz turns 503 and new signalling connections get HTTP
// 503; then connected clients are closed with status 1001 and "server
// shutting down: connect again", and should connect again at once.
// Sessions already set up go on: they do not depend on the server.
//
// The server cannot see whether the PAKE succeeded. Clients report a failed
// authentication by ending the pairing with reason "auth-failed", which the
// metric assist_failed_authentications_total counts.
package server
