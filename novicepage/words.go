package novicepage

import (
	"regexp"
	"strings"
)

// The novice's side speaks of "you" and of the helper by name: "novice",
// "expert", "rendezvous" and the names of network paths are the program's
// words, kept for the log file and the page's Details.

// Reason turns the reason the session gives for a change (the consent's
// audit words, such as "novice refused control" or "the expert left the
// session") into words for the novice; helper is the helper's name ("" for
// "your helper"). Reasons in several parts ("novice declined; this
// invitation is now closed") are turned part by part.
func Reason(reason, helper string) string {
	r := strings.TrimSpace(reason)
	if strings.Contains(r, "; ") {
		parts := strings.Split(r, "; ")
		for i, p := range parts {
			parts[i] = Reason(p, helper)
		}
		return strings.Join(parts, "; ")
	}
	name := helper
	if name == "" {
		name = "your helper"
	}
	if w, ok := reasonWords[r]; ok {
		return strings.ReplaceAll(w, "NAME", name)
	}
	if strings.HasPrefix(r, "expert ") && strings.HasSuffix(r, " authenticated") {
		return name + " typed the right code"
	}
	// Anything else (a newer version's words): the same rules as the
	// table, word by word.
	r = possessiveRe.ReplaceAllLiteralString(r, "your")
	r = noviceRe.ReplaceAllLiteralString(r, "you")
	r = expertPossRe.ReplaceAllLiteralString(r, name+"'s")
	return expertRe.ReplaceAllLiteralString(r, name)
}

var (
	possessiveRe = regexp.MustCompile(`(?i)\bthe novice's\b`)
	noviceRe     = regexp.MustCompile(`(?i)\b(the )?novice\b`)
	expertPossRe = regexp.MustCompile(`(?i)\b(the )?expert's\b`)
	expertRe     = regexp.MustCompile(`(?i)\b(the )?expert\b`)
)

// reasonWords are the session's reasons in the novice's words; NAME is the
// helper's name.
var reasonWords = map[string]string{
	"novice allowed viewing":                  "you said yes",
	"novice declined":                         "you said no",
	"novice allowed control":                  "you said yes",
	"novice refused control":                  "you said no to control",
	"novice took control back":                "you took control back",
	"novice shared the clipboard":             "you shared the clipboard",
	"novice revoked the clipboard":            "you stopped sharing the clipboard",
	"novice refused to share the clipboard":   "you said no to sharing the clipboard",
	"novice allowed file transfers":           "you allowed files",
	"novice refused file transfers":           "you said no to files",
	"novice stopped file transfers":           "you stopped files",
	"expert asked for control":                "NAME asks for control",
	"expert asked to share clipboards":        "NAME asks to share clipboards",
	"expert asked to exchange files":          "NAME asks to exchange files",
	"the expert gave control back":            "NAME gave control back",
	"the expert left the session":             "NAME left the session",
	"the expert left":                         "NAME left the session",
	"the novice ended the session":            "you ended the session",
	"the novice stopped sharing":              "you stopped sharing",
	"the novice withdrew the invitation":      "you withdrew the invitation",
	"the connection to the expert was lost":   "the connection to NAME was lost",
	"the expert's connection failed":          "the connection to NAME failed",
	"the expert's program broke the protocol": "NAME's program sent something it must not, so the session stopped",
	"the expert's name was refused":           "the name NAME gave was refused",
	"the assistance agent stopped":            "Assist stopped",
}
