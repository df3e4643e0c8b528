// Package noviceapp is the novice's app: what `assist` with no arguments
// runs on the novice's page (package novicepage in app mode). It offers
// Get help, which makes an invitation, and the messenger's contacts with
// their presence and Ask for help, and runs one invitation or session at a
// time; the invitation and the session themselves are the caller's
// (Config.Invite, Config.Session), served on the same page, so that they
// are those of `assist invite` and `assist ask`.
//
// One goroutine (feed) owns the messenger connection: it must read its
// events, keeps the contacts on the page, and hands the answers to
// requests to the app's loop. The app's part of the page (novicepage.App)
// is kept apart from the session's (novicepage.Status), so the two never
// write each other's fields.
package noviceapp
