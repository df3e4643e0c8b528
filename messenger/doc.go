// Package messenger is the wire protocol of the messenger behind
// "assist serve" (accounts, contacts pinned to device keys, presence,
// and requests for help) and its Go client, [Dial]. The server side is
// package messenger/hub. This package builds for GOOS=js (no server or
// database imports), so the browser's WebAssembly can use it.
//
// # Transport
//
//	GET /v1/messenger   WebSocket upgrade, on the same HTTPS server and
//	                    certificate as /v1/signal
//
// Every message is one WebSocket text message holding one JSON object with
// a "type" member. Binary values are base64url without padding (B64).
// The server parses strictly ([ParseClientMessage]): unknown or misspelt
// members, members of another type, missing required members, null, wrong
// JSON types, trailing data, binary messages and messages over 64 KiB get
// an "error" with code "malformed" and the connection is closed (status
// 1008, 1009 for size). Clients ignore members and types they do not know
// ([ParseServerMessage]).
//
// Every client message may carry "ref" (1 to 64 of [A-Za-z0-9_-]): the
// server copies it into the message that answers it directly (the one
// named after the arrow below) and into an error it causes, so a client
// can match answers to requests. Pushes carry no ref.
//
// Errors: {"type":"error","code":CODE,"message":TEXT,"ref":REF?}. Codes:
//
//	malformed     not a valid message (closes the connection)
//	unauthorized  not logged in, or not yours / not your contact / blocked
//	not-found     no such user, device, pairing or open request
//	invalid       well-formed but unacceptable (e.g. removing your only device)
//	taken         login: the user name belongs to another account
//	too-many      a limit is spent (logins, pair-joins, rate); the message
//	              says what to do. Message-rate overruns close the connection
//	internal      the server failed; try again
//	unavailable   the server cannot serve for now (its message bus, shared
//	              by several servers, is away); try again in a few seconds
//
// All but malformed and rate overruns leave the connection open.
//
// # Login (a challenge signed by the device key; no password)
//
//	S->C {"type":"challenge","nonce":B64}                      on connect, 32 random bytes
//	C->S {"type":"login","key":B64,"sig":B64,"user":NAME?,"display":TEXT?,"name":TEXT?,"code":PAIRID?}
//	S->C {"type":"welcome","user":NAME,"display":TEXT,"device":DEVICEID,"created":BOOL}
//
// sig is Ed25519 over [LoginMessage]: "assist/1 messenger login\x00" ||
// nonce || SHA-256 of the server's TLS leaf certificate as the client saw
// it, so a login relayed through another server fails. A known key logs
// in to its account (user, display and name are ignored). An unknown key
// with a free user NAME creates the account with this as its first
// device (display defaults to NAME, the device's name to "device 1").
// An unknown key with a taken NAME gets "taken", unless "code" names a
// device link that a device of NAME opened (see Pairing): the connection
// is then the joining side of that pairing, and gets "welcome" after both
// sides' "pair-done". NAME is 1 to 32 of [a-z0-9._-] starting with a letter
// or digit; display and name are 1 to 64 printable characters. Before
// "welcome" only "login" (and the link's pair-relay and pair-done) are
// accepted, others get "unauthorized"; a connection not logged in 10 s
// after it opened is closed (1008), and one whose device link has not
// ended in a welcome 60 s after its login is too (its peer gets
// "pair-failed"). A bad signature gets "unauthorized"
// and may be retried on the same connection (same nonce) within the
// address's login allowance.
//
// # Contacts, presence and devices
//
//	C->S {"type":"contacts"}  -> {"type":"contacts","contacts":[CONTACT...],"blocked":[NAME...]}
//	CONTACT = {"user":U,"display":D,"state":STATE,"devices":[DEVICE...]}
//	DEVICE  = {"id":DEVICEID,"key":B64,"name":TEXT,"cert":{"signer":B64,"sig":B64}?}
//	C->S {"type":"state","state":"online"|"busy"|"away"}      (no answer)
//	S->C {"type":"presence","user":U,"state":STATE}           push
//	C->S {"type":"remove","user":U}    -> {"type":"removed","user":U}
//	C->S {"type":"block","user":U}     -> {"type":"blocked","user":U}
//	C->S {"type":"unblock","user":U}   -> {"type":"unblocked","user":U}
//	C->S {"type":"devices"}            -> {"type":"devices","devices":[DEVICE + "self":BOOL,"online":BOOL]}
//	C->S {"type":"remove-device","device":DEVICEID} -> {"type":"device-removed","device":DEVICEID}
//
// STATE is a user's best over its connected devices: busy > online > away;
// none connected is "offline". A device is "online" when it logs in. A
// change is pushed at once to every connection of every contact, and to
// nobody else: the state of a non-contact is never sent. A "state" the
// server cannot pass on now (its message bus is away) is kept and set when
// it can, since the client hears no answer. "remove" ends the
// contact for both accounts (the other one's connections get "removed"
// too, and presence stops both ways); "block" removes and keeps the user
// from pairing with or asking this account until "unblock" (other
// connections of the blocker get "blocked"; the blocked side sees only
// "removed"). remove, block and unblock of yourself are "invalid"; remove
// of a non-contact is "not-found". remove-device takes only a device of
// the same account ("not-found" otherwise, the same answer as for no such
// device), refuses the account's last device ("invalid"), and closes that
// device's connections; the other connections of the account get
// "device-removed". DEVICEID is 12 of [a-z2-7].
//
// A device added by a device link carries cert: Ed25519 by an existing
// device of the account (signer) over [CertMessage]: "assist/1
// device\x00" || user || 0x00 || new key. The first device has none.
// Clients accept a contact's device key for a session only if it is pinned
// or chains by certs to a pinned key: the server's word is not enough.
//
// # Pairing by code (contacts and device links), relayed by the server
//
//	C->S {"type":"pair-open","purpose":"contact"|"device"} -> {"type":"pair-opened","pair":PAIRID,"expires":RFC3339}
//	C->S {"type":"pair-join","pair":PAIRID,"purpose":P}    -> {"type":"pair-peer","pair":PAIRID,"user":U,"display":D}
//	S->C {"type":"pair-peer",...}                            push to the opener when someone joined
//	C->S {"type":"pair-relay","pair":PAIRID,"data":ANY}    S->peer the same, "data" byte for byte
//	C->S {"type":"pair-done","pair":PAIRID,"key":B64,"cert":B64?}
//	S->C {"type":"contact-added","user":U,"display":D,"pair":PAIRID}  both sides (and their accounts' other connections, without pair)
//	S->C {"type":"device-added","pair":PAIRID,"device":DEVICEID}      the old device of a link
//	S->C {"type":"welcome",...}                                        the new device of a link
//	S->C {"type":"pair-failed","pair":PAIRID,"reason":TEXT}            both sides
//
// PAIRID is 4 Crockford base32 symbols (upper case) chosen by the server,
// unique among live pairings, valid 10 minutes, joined once. The code
// people type is PAIRID-SECRET; the secret never reaches the server. The
// server records the contact (or the device) only when both sides sent
// "pair-done" naming the other's real device key (and, for a device link,
// the old device's cert verifies); otherwise, or when either side leaves
// or the pairing expires, both get "pair-failed" and it is gone. A
// pair-join of an unknown, expired, used or other-purpose PAIRID, of your
// own contact pairing, or between blocked users gets "not-found" (one
// answer for all) and costs a token of the account's and the address's
// pair-join allowance (10 at once, then one every 6 s; spent: "too-many"
// before anything is looked up). A pairing relays at most 64 messages.
// Package pairing runs the exchange over pair-relay ([Pair] implements its
// channel: data is a base64url string).
//
// # Requests for help
//
//	C->S {"type":"ask","to":U,"kind":"help"|"offer"} -> {"type":"asked","request":RID,"to":U,"kind":K,"expires":RFC3339}
//	S->C {"type":"request","request":RID,"from":U,"display":D,"kind":K,"expires":RFC3339}   every connection of "to"
//	C->S {"type":"answer","request":RID,"accept":BOOL} -> "accepted" (accept) or "request-closed" reason "declined"
//	S->C {"type":"accepted","request":RID,"by":U,"session":SID,"role":"novice"|"expert","peer":{"user":U,"display":D,"device":DEVICE}}
//	                                               the asking connection and the answering connection
//	S->C {"type":"declined","request":RID,"by":U}  the asking connection
//	S->C {"type":"request-closed","request":RID,"reason":"answered"|"cancelled"|"expired"|"declined"}
//	                                               the other connections of both accounts
//	C->S {"type":"cancel","request":RID}  -> {"type":"request-closed","request":RID,"reason":"cancelled"}
//
// Only contacts may ask each other, and not when either blocked the other
// ("unauthorized" for both, one answer). "help": the asker is the novice;
// "offer": the asker is the expert. A request expires 5 minutes after it
// was made ("request-closed" "expired" to everyone concerned, the asking
// connection included); it is delivered to the devices of "to" that log
// in before then. The first answer wins; a later answer, an answer to a
// request that is not yours or whose two users are no longer contacts (a
// removal or block since), and a cancel of a request another device made
// get "not-found" (one answer for all). A request belongs to the
// connection that asked: when it closes, the request is cancelled, and a
// server that restarts closes those of its last run. RID is
// 16 random bytes (B64). SID is "r-" and 26 lowercase base32 characters
// (128 random bits), a valid /v1/signal invitation id that only the two
// devices learn: the capability for their session.
//
// # Audit trail (organisations)
//
//	C->S {"type":"audit-upload","audit":JSONL?}  -> {"type":"audit-stored","seq":N}
//	C->S {"type":"audit-search","organisation":ORG,"since":RFC3339?,"text":TEXT?,"offset":N?}
//	                                   -> {"type":"audit-entries","organisation":ORG,"audit":JSONL,"more":BOOL?}
//	C->S {"type":"audit-verify","organisation":ORG}
//	                                   -> {"type":"audit-verified","organisation":ORG,"chains":[CHAIN...]}
//	CHAIN = {"key":B64,"user":U,"entries":N,"first":N,"last":N,"pruned":N,"head_checked":BOOL,"bad":TEXT?}
//
// JSONL is package audit's upload format: entries' stored lines, then
// optionally {"head":HEAD}. A machine, helper or admin of an organisation
// uploads its own chain only: every entry and the head must be signed by
// the logged-in device's key ("invalid" otherwise); the server verifies
// the entries and that they follow on what it holds, and refuses a chain
// that contradicts it ("invalid", "contradicts what this server stored").
// Without "audit" the answer only says how far the server holds the chain
// (seq 0: not at all); the device then sends what follows, in messages
// under the size limit, its head with the last. Anyone else gets
// "unauthorized". The server also keeps its own chain: each offer to an
// organisation's machine (offered, accepted, declined, timed out,
// withdrawn) and each pairing it made.
//
// audit-search and audit-verify are for the organisation's admins only
// ("unauthorized" for anyone else, and for an organisation that does not
// exist). A search returns the entries of the organisation's machines'
// and helpers' chains and the server's entries about it, oldest first,
// in pages: ask again with offset plus the entries received while "more"
// is true. "since" bounds the time, "text" must occur in the novice's,
// expert's or machine's name. audit-verify verifies the server's chain
// (CHAIN's user "") and each of the organisation's; "bad" names the first
// bad entry.
//
// # Session recordings (organisations)
//
//	C->S {"type":"recording-upload","session":ID?,"offset":N,"recording":B64,"more":BOOL?,"user":U?,"since":RFC3339?}
//	                                   -> {"type":"recording-stored","session":ID,"offset":N}
//	C->S {"type":"recording-list","organisation":ORG}
//	                                   -> {"type":"recordings","organisation":ORG,"recordings":[REC...]}
//	C->S {"type":"recording-get","organisation":ORG,"session":ID,"offset":N?}
//	                                   -> {"type":"recording-data","organisation":ORG,"session":ID,"offset":N,"recording":B64,"more":BOOL?}
//	REC = {"id":ID,"machine":U,"user":U,"start":RFC3339,"size":N}
//
// A machine of an organisation whose policy records uploads a session's
// encrypted recording (age, to the organisation's audit key: the server
// cannot read it) in chunks of at most 32 KiB: the first without
// "session", naming the helper ("user") and the session's start
// ("since"), each next one with the id the server answered and the
// offset it holds; the last has no "more". Anyone else, and a machine of
// an organisation that does not record, gets "unauthorized"; a file over
// the server's cap (default 512 MiB), or an organisation whose
// recordings fill their space (default 8 GiB), "invalid". Only the
// organisation's admins list and download its recordings ("unauthorized"
// for anyone else), in chunks: ask again from offset plus the bytes
// received while "more" is true.
//
// # Limits
//
// Per address (an IPv4 address or an IPv6 /64; X-Forwarded-For is not
// trusted): 64 connections at once (HTTP 429 beyond, before the upgrade),
// failed logins 10 at once then one every 6 s, pair-joins that miss as
// above, accounts created: 10 at once, then one a minute. Per connection:
// 20 messages a second after a burst of 100 (over: "too-many" and close),
// messages of 64 KiB, 64 messages waiting for a client that does not read
// (then it is disconnected). Per account: 32 connections ("too-many" at
// login), 16 open pairings, 32 open requests, 1,000 blocks, pair-join
// misses as above. See hub.Config; `assist serve --max-conns-per-address`
// sets the per-address connections.
package messenger
