package lan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/rendezvous"
	"github.com/assist-project/assist/transport"
)

// Dial reaches the novice through the invitations Lookup found: it dials
// every one of them at once (each through rendezvous.DirectPath, in a race
// of its own) and keeps the first to authenticate, which it returns with
// the invitation it came from (whose Name is the novice's).
//
// The answers are different computers, each with its own count of
// password attempts, so unlike the paths of one invitation they do not
// take turns: a hostile answer that fails its PAKE, claims the password is
// wrong, or accepts and says nothing, settles nothing for the others.
func Dial(ctx context.Context, found []*invitation.Invitation, password, name string, logger *slog.Logger) (*rendezvous.Joined, *invitation.Invitation, error) {
	return dialAll(ctx, found, password, name, logger)
}

func dialAll(ctx context.Context, found []*invitation.Invitation, password, name string, logger *slog.Logger) (*rendezvous.Joined, *invitation.Invitation, error) {
	if len(found) == 0 {
		return nil, nil, ErrNotFound
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type outcome struct {
		i   int
		j   *rendezvous.Joined
		err error
	}
	// Buffered for every answer: no goroutine outlives dialAll waiting to
	// hand its outcome over.
	out := make(chan outcome, len(found))
	for i, inv := range found {
		go func() {
			p := rendezvous.DirectPath(inv.Addrs, inv.ID, password, name)
			j, err := rendezvous.Race(ctx, logger, []rendezvous.Path{p})
			out <- outcome{i, j, err}
		}()
	}
	var (
		won    *rendezvous.Joined
		winner *invitation.Invitation
	)
	errs := make([]error, len(found))
	for range found {
		o := <-out
		switch {
		case o.err == nil && won == nil:
			won, winner = o.j, found[o.i]
			cancel()
		case o.err == nil:
			o.j.Close()
		default:
			errs[o.i] = o.err
		}
	}
	if won != nil {
		return won, winner, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	return nil, nil, pickError(found, errs)
}

// pickError says why no answer worked. With one answer, its error. With
// several, the first that is not "unreachable" (a novice that answered
// the PAKE says more than an address that never answered), and how many
// computers answered, since a stranger may be among them.
func pickError(found []*invitation.Invitation, errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	best := errs[0]
	for _, err := range errs {
		if !errors.Is(err, transport.ErrUnreachable) {
			best = err
			break
		}
	}
	addrs := make([]string, len(found))
	for i, inv := range found {
		addrs[i] = strings.Join(inv.Addrs, " ")
	}
	return fmt.Errorf("%d computers on this network answered for this code (%s), none let you in: %w", len(found), strings.Join(addrs, "; "), best)
}
