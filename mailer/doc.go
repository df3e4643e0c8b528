// Package mailer sends an invitation by e-mail, the two ways Windows XP's
// Remote Assistance did: through the user's own mail program (XP used Simple
// MAPI; here xdg-email, which opens the user's mail program with the file
// attached and the message written, for the user to send), or directly over
// SMTP with a well-kept client (github.com/wneessen/go-mail).
//
// Compose writes the message: a subject and a plain-text body in plain words
// (the link, the browser address of the rendezvous server when the
// invitation has one) and the invitation file to attach. The message never
// holds the password, nor the short code of an invitation through a server
// (its words are the password): whoever reads the e-mail alone cannot get
// in. The novice reads the code out by phone, as before.
//
// SMTP.Send delivers a composed message over SMTP (STARTTLS, implicit TLS,
// or plain on loopback only); MailProgram hands it to the user's mail
// program. Both take the composed Letter, so what is sent is the same either
// way.
package mailer
