package audit

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Words says what an entry records in plain words, without its time (the
// caller prints that in the reader's time zone).
func (e *Entry) Words() string {
	expert, novice := or(e.Expert, "the expert"), or(e.Novice, "the novice")
	switch e.Kind {
	case KindStart:
		s := fmt.Sprintf("%s started helping %s", expert, novice)
		if e.Machine != "" {
			s += " on " + e.Machine
		}
		if e.Path != "" {
			s += " (" + e.Path + ")"
		}
		return s
	case KindConsent:
		if e.Party == PartyServer {
			// The server's record of an organisation's offer: no rights
			// were granted by it.
			return serverWords(e.Action, expert, novice, e.Machine, e.Reason)
		}
		s := consentWords(e.Action, expert, novice)
		s += "; " + expert + " " + rightsWords(e.Rights)
		if e.Auto {
			s += " (answered by the policy or the clock)"
		}
		if e.Reason != "" {
			s += ": " + e.Reason
		}
		return s
	case KindRights:
		s := novice + "'s computer says: " + or(e.To, "?") + "; you " + rightsWords(e.Rights)
		if e.Reason != "" {
			s += ": " + e.Reason
		}
		return s
	case KindPath:
		return "the connection moved to " + e.Path
	case KindFile:
		f := e.File
		from, to := expert, novice
		if f.Direction == ToExpert {
			from, to = novice, expert
		}
		s := fmt.Sprintf("file %q (%d bytes) from %s to %s: %s", f.Name, f.Size, from, to, f.Result)
		if f.SHA256 != [32]byte{} {
			s += ", SHA-256 " + hex.EncodeToString(f.SHA256[:])
		}
		if e.Reason != "" {
			s += " (" + e.Reason + ")"
		}
		return s
	case KindRecording:
		f := e.File
		return fmt.Sprintf("the session was recorded: %s (%d bytes, encrypted to the audit key), SHA-256 %s", f.Name, f.Size, hex.EncodeToString(f.SHA256[:]))
	case KindEnd:
		return "the session ended: " + or(e.Reason, "no reason given")
	case KindCut:
		return fmt.Sprintf("entries up to %d were removed (%s)", e.Cut.Through, e.Reason)
	}
	return string(e.Kind)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// rightsWords: "may view and control", "may do nothing".
func rightsWords(r string) string {
	if r == "" || r == "none" {
		return "may do nothing"
	}
	return "may " + strings.ReplaceAll(r, "+", ", ")
}

func consentWords(action, expert, novice string) string {
	switch action {
	case "expert-authenticated":
		return expert + " connected"
	case "allow-view":
		return novice + " allowed viewing"
	case "deny-view":
		return novice + " did not allow viewing"
	case "request-control":
		return expert + " asked for control"
	case "allow-control":
		return novice + " allowed control"
	case "deny-control":
		return novice + " did not allow control"
	case "take-back-control":
		return novice + " took control back"
	case "give-back-control":
		return expert + " gave control back"
	case "request-clipboard":
		return expert + " asked to share clipboards"
	case "allow-clipboard":
		return novice + " shared the clipboard"
	case "deny-clipboard":
		return novice + " did not share the clipboard"
	case "clipboard":
		return novice + " changed clipboard sharing"
	case "request-files":
		return expert + " asked to exchange files"
	case "allow-files":
		return novice + " allowed files"
	case "deny-files":
		return novice + " did not allow files"
	case "files":
		return novice + " changed file sharing"
	case "end":
		return "the session ended"
	}
	return action
}

// The actions of the server's own entries about an organisation's offer
// (Kind consent, Party server).
const (
	ServerOffered   = "offered"
	ServerAccepted  = "accepted"
	ServerDeclined  = "declined"
	ServerTimedOut  = "timed-out"
	ServerCancelled = "cancelled"
)

func serverWords(action, expert, novice, machine, reason string) string {
	on := ""
	if machine != "" {
		on = " on " + machine
	}
	var s string
	switch action {
	case ServerOffered:
		s = expert + " offered help to " + novice + on
	case ServerAccepted:
		s = novice + on + " accepted " + expert + "'s offer"
	case ServerDeclined:
		s = novice + on + " declined " + expert + "'s offer"
	case ServerTimedOut:
		s = expert + "'s offer to " + novice + on + " timed out"
	case ServerCancelled:
		s = expert + " withdrew the offer to " + novice + on
	default:
		s = action
	}
	if reason != "" {
		s += " (" + reason + ")"
	}
	return "server: " + s
}
