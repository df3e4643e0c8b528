// Package audit keeps an audit trail nobody can quietly rewrite: an
// append-only log of who helped whom, on which machine, over which path,
// each right granted and revoked, each file moved (name, size, SHA-256)
// and how each session ended.
//
// # The chain
//
// Every party keeps its own chain (the novice's agent, the expert's
// client, the server), signed with its own key: a device's Ed25519 key
// (package identity), the server's own key. Each Entry carries
//
//   - Seq, its number in the chain, from 1 with no gaps;
//   - Prev, the Hash of the entry before it (32 zero bytes for entry 1);
//   - Key, the signer's public key, and Sig, its Ed25519 signature.
//
// Editing an entry breaks its signature; deleting or moving one breaks
// the next entry's Seq and Prev; an entry signed by another key is named
// as such. What a signature cannot show is a chain cut short at its end,
// so every append also rewrites a signed Head (the last Seq and Hash),
// kept apart from the log (and, for an organisation, uploaded to the
// server): a log that ends before its head is truncated. Whoever holds
// the key can still rewrite the whole chain and its head; the server's
// copy of a device's head, and the other parties' chains of the same
// session, are what catch that.
//
// # Canonical encoding
//
// What is signed and hashed is not the JSON: it is a binary encoding with
// exactly one form per entry (Entry.signed): a domain string, then every
// field in a fixed order, each as a one-byte tag, a four-byte big-endian
// length and the bytes (integers as eight big-endian bytes, the time as
// Unix nanoseconds). Every field is always present, so no field can be
// mistaken for another or run into the next (a name holding a separator
// or a quote changes nothing), and an independent verifier needs no JSON
// library that escapes, orders and formats numbers as Go's does. The
// stored form is one JSON object per line (JSONL) for people and tools;
// the parser is strict (no unknown or duplicate fields, the line must be
// exactly what Marshal makes of the entry it parsed, no control
// characters), so one entry also has exactly one stored line.
//
// # Retention
//
// Prune removes the entries older than a time and appends a Cut entry,
// signed like any other, naming the last removed entry's Seq and Hash. The
// first kept entry's Prev must match a Cut's hash, so what remains still
// verifies, and removing entries anywhere else still shows.
//
// # Stores
//
// FileLog is the novice's and the expert's log: audit.jsonl in the user's
// state directory (0600, fsync after every entry, an advisory lock so
// several assist processes append to one chain) beside audit.head.
// SQLStore keeps the server's chains (its own and the ones devices
// upload) in an SQL table of the server's SQLite database.
package audit
