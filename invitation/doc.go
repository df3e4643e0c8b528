// Package invitation is what the novice hands to the expert: where to find
// the novice's agent, who is asking for help and until when. It is the modern
// form of Windows XP Remote Assistance's "save invitation as a file".
//
// An invitation never holds the password, nor anything from which the
// password can be learned or checked offline: no hash, no salt, no verifier,
// no MAC keyed by the password. The password travels by another channel (read
// over the phone) and is only ever used as the input of the PAKE, where each
// connection attempt gives an attacker at most one online guess. Whoever
// steals an invitation file learns the novice's name, addresses and the
// expiry, and nothing that helps guess the password.
//
// # File format, version 1
//
// An invitation file (extension ".assist") is one UTF-8 JSON object (RFC 8259),
// written indented and ending in a newline so that people can read it and
// other implementations can produce it easily:
//
//	{
//	  "type": "assist-invitation",
//	  "version": 1,
//	  "id": "3hqzzb6ffd7n6dabdjdx2qtghm",
//	  "name": "Ada Lovelace",
//	  "created": "2025-03-01T09:30:00Z",
//	  "expires": "2025-03-01T13:30:00Z",
//	  "addrs": [
//	    "192.168.1.20:5500",
//	    "203.0.113.7:41234"
//	  ],
//	  "server": "https://assist.example.org"
//	}
//
// Members, all required unless marked optional:
//
//   - "type": the constant "assist-invitation", so that a stray JSON file is
//     recognised as not being an invitation.
//   - "version": the integer 1. A reader that meets a larger version must
//     refuse the file and tell the user to upgrade, because a later version may
//     change the meaning of members it would otherwise misread.
//   - "id": 128 random bits in RFC 4648 base32, lower case, without padding
//     (26 characters). It names the invitation and is also the PAKE session
//     id, so a PAKE transcript of one invitation cannot be replayed against
//     another.
//   - "name": the novice's display name: at most 64 characters, printable
//     Unicode (no control or format characters, so no bidirectional
//     overrides), not empty, no surrounding spaces.
//   - "created", "expires": RFC 3339 times, written in UTC with second
//     precision (XP's DtStart and DtStart+DtLength). "expires" is after
//     "created" and at most 30 days later. Readers accept any RFC 3339 offset
//     and drop fractions of a second.
//   - "addrs": the "host:port" addresses the expert tries, all at once: the
//     novice's LAN addresses and the address the agent mapped on the home
//     router. At most 16, no duplicates. A host is an IPv4 address, an IPv6
//     address in brackets (no zone), or a DNS name; the port is decimal,
//     1 to 65535. May be empty only when "server" is present.
//   - "server": optional; the URL (https, or http for a lab) of a rendezvous
//     server that can relay or signal for this invitation.
//
// Readers reject: files over 64 KiB, invalid UTF-8 or JSON, members not listed
// above (for the version in the file), duplicate members, null values, and any
// member that breaks the rules above. Member names are case-sensitive.
//
// # URL form
//
// The same invitation fits in a URL, for links, e-mail and QR codes:
//
//	assist://invite?d=<base64url, unpadded, of the compact JSON document>
//
// # Codes and passwords
//
// [Invitation.ShortCode] is a short phone-readable form of the id; it
// identifies an invitation and authenticates nothing. [NewPassword] makes the
// password the novice reads to the expert, and [NormalizePassword] maps what
// either side typed to the exact string given to the PAKE.
package invitation
