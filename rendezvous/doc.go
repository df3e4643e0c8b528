// Package rendezvous is the client side of the rendezvous server
// ("assist serve", package server): how a novice's agent and an expert meet
// there and set up a WebRTC connection (transport/rtc) over the server's
// relayed signalling. The server only carries opaque messages, rtc's
// signalling base64 in a JSON string, never a password or a key.
//
// The novice's side is a Novice: it registers ids (an invitation's id, a
// short code's look-up number, a messenger session id) with a secret of its
// own, answers each expert the server pairs it with by running the PAKE
// over WebRTC, counted against the invitation's attempts
// (transport.Listener.ReserveAttempt), and hands out authenticated
// experts on Experts. It registers again when the server goes away; a
// session set up through the server does not need the server and goes on.
//
// The expert's side is Join (one path through the server) and Race, which
// tries several paths at once (DirectPath: the invitation's addresses;
// ServerPath: the server) and lets their password attempts take turns, so
// a mistyped password costs one attempt, not one per path.
//
// Both sides keep a session's signalling alive across a lost connection to
// the server: the expert joins again and proves, with a key derived from
// the PAKE, that it is the running session's expert; the novice hands the
// new pairing to that session, which then does an ICE restart if its path
// broke too (resume.go, rtc.Conn.Resignal).
//
// The package knows no terminal, page or flag: the CLI (cmd/assist), the
// messenger's keyed sessions and a service call it alike.
package rendezvous
