package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/assist-project/assist/invitation"
)

// joinTarget is what the expert gave assist join: a short code, or an
// invitation.
type joinTarget struct {
	// code is set for a short code ("7-crayon-harbor"), typed or taken
	// from a browser link (https://SERVER/#7-crayon-harbor).
	code   invitation.WordCode
	isCode bool
	// server is the rendezvous server a browser link names; "" for a
	// typed code (--server says it then) and for invitations (they carry
	// their own).
	server string
	// inv is the invitation of a file or an assist://invite link.
	inv *invitation.Invitation
	// lanCode is set for the code of an invitation without a server
	// ("W848-T91J", canonical): assist join looks for it on the local
	// network (package lan).
	lanCode string
	// lanPassword is the password when it was given with the code, as
	// one run of 16 symbols ("W848-T91J K7M2-9XQT"); "" otherwise.
	lanPassword string
}

// parseJoinTarget reads assist join's argument: an invitation file, an
// invitation link (assist://invite?d=...), the browser link assist invite
// prints (https://SERVER/#CODE), or a short code. A file wins over a code
// of the same name.
func parseJoinTarget(arg string) (joinTarget, error) {
	arg = strings.TrimSpace(arg)
	lower := strings.ToLower(arg)
	switch {
	case strings.HasPrefix(lower, "assist:"):
		inv, err := invitation.ParseURL(arg)
		if err != nil {
			return joinTarget{}, err
		}
		return joinTarget{inv: inv}, nil
	case strings.HasPrefix(lower, "https://"), strings.HasPrefix(lower, "http://"):
		return parseBrowserLink(arg)
	}
	if _, err := os.Stat(arg); err == nil {
		inv, err := invitation.ReadFile(arg)
		if err != nil {
			return joinTarget{}, err
		}
		return joinTarget{inv: inv}, nil
	}
	code, err := invitation.ParseWordCode(arg)
	if err == nil {
		return joinTarget{code: code, isCode: true}, nil
	}
	// The code of an invitation without a server, as assist invite
	// prints it, alone or followed by the password.
	if c, ok := invitation.CanonicalCrockford(arg, 8); ok {
		return joinTarget{lanCode: c[:4] + "-" + c[4:]}, nil
	}
	if c, ok := invitation.CanonicalCrockford(arg, 16); ok {
		return joinTarget{lanCode: c[:4] + "-" + c[4:8], lanPassword: c[8:]}, nil
	}
	if looksLikeCode(arg) {
		return joinTarget{}, fmt.Errorf("%q: %w", arg, err)
	}
	if strings.ContainsRune(arg, os.PathSeparator) || strings.HasSuffix(lower, invitation.FileExtension) {
		// Meant as a file: say what is wrong with it.
		_, err := invitation.ReadFile(arg)
		return joinTarget{}, err
	}
	return joinTarget{}, fmt.Errorf("%q is not an invitation file, an invitation link or a code: give the file the novice sent, or the code assist invite shows (like 7-crayon-harbor or W848-T91J)", arg)
}

// parseBrowserLink reads https://SERVER/#CODE: the server's address and the
// code. The code sits in the fragment, which browsers never send to the
// server; the CLI uses the link the same way.
func parseBrowserLink(arg string) (joinTarget, error) {
	u, err := url.Parse(arg)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return joinTarget{}, fmt.Errorf("%q is not a link assist invite prints (https://SERVER/#CODE)", arg)
	}
	if u.Fragment == "" {
		return joinTarget{}, errors.New("the link has no code after its #: use the whole browser: line assist invite printed, or give the code and --server")
	}
	code, err := invitation.ParseWordCode(u.Fragment)
	if err != nil {
		return joinTarget{}, fmt.Errorf("the link's code: %w", err)
	}
	u.Fragment, u.RawFragment = "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return joinTarget{code: code, isCode: true, server: u.String()}, nil
}

// looksLikeCode reports whether s has the shape of a short code (a number,
// then words), so a misspelt word gets the code's error rather than "no
// such file".
func looksLikeCode(s string) bool {
	head, _, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		head, _, ok = strings.Cut(strings.TrimSpace(s), " ")
	}
	if !ok || head == "" {
		return false
	}
	for _, r := range head {
		if r < '0' || r > '9' {
			return false
		}
	}
	return !strings.ContainsAny(s, "/.")
}
