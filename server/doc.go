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
//	GET /metrics     Prometheus text format
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
//	{"type":"register","id":ID,"expires":RFC3339}  novice: offer the invitation ID
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
// "reason" is optional, at most 256 bytes.
//
// Server to client:
//
//	{"type":"registered","id":ID,"expires":RFC3339}
//	{"type":"paired","session":SESSION,"ice":[ICESERVER...]}  to both sides
//	{"type":"relay","data":ANY}         the peer's relay message; "data" byte for byte
//	{"type":"bye","reason":TEXT}        the peer ended the pairing
//	{"type":"peer-left"}                the peer's connection closed
//	{"type":"error","code":CODE,"message":TEXT}
//
// ICESERVER has the shape of WebRTC's RTCIceServer:
// {"urls":[URL...],"username":U,"credential":C}; TURN credentials follow the
// REST convention coturn also accepts (see [TURNCredentials]), valid for the
// server's credential lifetime. The same list is served by GET /v1/ice while
// the session is paired.
//
// Error codes (the message is meant for people and may change):
//
//	malformed     not a valid message (closes the connection)
//	too-large     message over the size limit (closes the connection)
//	rate-limited  too many messages (closes the connection)
//	invalid       well-formed but unacceptable, e.g. expiry in the past
//	unexpected    not allowed in this state, e.g. join after register
//	taken         register: another connected novice holds this id
//	unknown       join: no invitation with this id
//	expired       join or register: the invitation has expired
//	offline       join: the invitation exists but its novice is not connected
//	busy          join: the novice is paired with another expert
//	not-paired    relay or bye without a peer (e.g. the peer just left)
//	internal      the server failed (e.g. its store); try again
//
// A registered invitation is stored, so it survives a server restart: the
// novice's agent reconnects and registers the same id again, and until then
// experts get "offline". Registering an id that is stored but has no
// connected novice takes it over; the PAKE makes that worthless to anyone
// without the password. After "bye" or "peer-left" the novice stays
// registered and may be joined again, and the expert may join again.
//
// The server cannot see whether the PAKE succeeded. Clients report a failed
// authentication by ending the pairing with reason "auth-failed", which the
// metric assist_failed_authentications_total counts.
package server
