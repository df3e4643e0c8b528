package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/lan"
	"github.com/assist-project/assist/rendezvous"
)

// joinLAN is assist join CODE on the local network: for the code of an
// invitation without a server ("W848-T91J", target.lanCode) or a word
// code given without a server ("7-crayon-harbor": target.lanCode is its
// number, target.lanPassword its words). It asks the local network for the
// invitation (lan.Lookup), then the password if the code did not carry
// it, then dials every answer at once.
func joinLAN(ctx context.Context, stdout io.Writer, target joinTarget, passwordFile string, opts expertOptions) error {
	fmt.Fprintf(os.Stderr, "looking for the invitation %s on this network\n", target.lanCode)
	found, err := lan.Lookup(ctx, target.lanCode, lan.Config{Logger: slog.Default()})
	if err != nil && target.isCode {
		// A word code's invitation lives on a server first of all.
		why := "no invitation with that code on this network"
		if !errors.Is(err, lan.ErrNotFound) {
			why = err.Error()
		}
		return fmt.Errorf("%s: a code like 7-crayon-harbor comes with a server: pass --server URL (as the novice's assist invite shows), or set ASSIST_SERVER", why)
	}
	if err != nil {
		return err
	}
	// Anyone on the network can answer: say so when answers disagree.
	names := map[string]bool{}
	for _, inv := range found {
		names[inv.Name] = true
	}
	novice := found[0].Name
	if len(names) > 1 {
		novice = "the novice"
		var list []string
		for n := range names {
			list = append(list, fmt.Sprintf("%q", n))
		}
		fmt.Fprintf(os.Stderr, "warning: %d computers answered for this code, calling themselves %s; only the one that knows the password can let you in\n", len(found), strings.Join(list, ", "))
	}
	password := invitation.NormalizePassword(target.lanPassword)
	if target.lanPassword == "" {
		ask := *found[0]
		ask.Name = novice
		if password, err = joinPassword(passwordFile, &ask); err != nil {
			return err
		}
	}
	// Dialled here rather than in serveExpert's race, so that the expert
	// reads the name of the computer that let them in, not of the first
	// to answer.
	j, inv, err := lan.Dial(ctx, found, password, opts.Name, slog.Default())
	if err == nil {
		novice = inv.Name
	}
	paths := []rendezvous.Path{{
		Name: "lan", What: "the local network",
		Dial: func(context.Context, rendezvous.AuthHook) (*rendezvous.Joined, error) { return j, err },
	}}
	return serveExpert(ctx, stdout, paths, novice, opts)
}
