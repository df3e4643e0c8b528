// Package lan finds an invitation on the local network by its short code,
// with no server at all: the novice's agent announces the invitation by
// mDNS/DNS-SD (RFC 6762, RFC 6763) and the expert's agent asks the network
// for it, as Windows XP's Remote Assistance found a novice on the same LAN.
//
// The novice announces one service instance of type _assist._tcp in the
// local. domain, named by what the novice reads out: the invitation's
// short code ("W848-T91J") without a server, the word code's number ("7"
// of 7-crayon-harbor) with one. It has an SRV
// record with the agent's port, A and AAAA records with its addresses and a
// TXT record with what the expert needs to run the PAKE and to show whom it
// reaches: the invitation's id, the novice's name, and when the invitation
// was created and expires. Never the password: the novice reads it out, and
// it stays the PAKE's input.
//
// Anyone on the LAN can answer an mDNS question, so every answer is
// untrusted. An answer is read from one packet only (a second packet cannot
// change an answer already read), with bounded counts of records, fields
// and addresses; its TXT record must name an invitation whose short code is
// the one asked for; its addresses must be on the network the answer came
// from (the sender's own address, an address inside one of the receiving
// interface's prefixes, or an IPv6 link-local address on that interface),
// so a stranger's answer cannot send the expert's agent across the
// internet. A hostile answer that passes these checks reaches, at worst, a
// PAKE run against a machine that does not know the password: one online
// guess for the attacker, exactly as a stranger dialling the novice's port
// has today, and the expert's agent tries every answer at once
// (Dial), so a wrong answer does not hide the right one.
//
// Why hashicorp/mdns for announcing and miekg/dns for asking:
// github.com/hashicorp/mdns is a small, maintained responder that answers
// the SRV, TXT, A and AAAA questions from a fixed zone; its client, though,
// merges records from every packet into shared entries (a later hostile
// packet rewrites an address of an entry already handed out) and keeps one
// address per family, so the asking side is written here on
// github.com/miekg/dns, the DNS library hashicorp/mdns itself uses.
// github.com/pion/mdns (already in the module graph through WebRTC) only
// resolves .local host names for ICE; it has no DNS-SD services.
package lan
