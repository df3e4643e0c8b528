// Package account is what one device does with its messenger account, for
// the CLI's login, contacts, devices, ask and requests commands: log in (with
// the server's certificate trusted on first use), add contacts and devices by
// code and pin their keys, check a request's peer against the pinned keys and
// derive the session password, and wait for the answer to a request.
//
// It joins three packages: identity (the key and config on disk), pairing
// (the code exchange, certificates, session secrets) and messenger (the
// connection). It prints nothing: callers get values and callbacks.
package account
