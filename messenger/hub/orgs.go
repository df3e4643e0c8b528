package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/assist-project/assist/messenger"
)

// orgs returns the hub's OrgStore, or nil when its Store keeps none.
func (h *Hub) orgs() OrgStore {
	o, _ := h.store.(OrgStore)
	return o
}

// enrolLogin handles a login with an enrolment token by an unknown key:
// the machine's account is created in the token's organisation.
func (h *Hub) enrolLogin(ctx context.Context, c *conn, m messenger.Message) {
	const refused = "this enrolment token is unknown, used up or expired: ask your organisation's admin for a new one"
	orgs := h.orgs()
	now := time.Now()
	if orgs == nil {
		h.limits.loginFailed(c.addr, now)
		c.fail(m.Ref, messenger.CodeNotFound, refused)
		return
	}
	// A wrong token costs a failed login: guessing tokens is as slow as
	// guessing logins (and 128 bits are not guessed anyway).
	a, d := h.newAccount(m, m.User)
	org, err := orgs.Enrol(ctx, TokenHash(m.Token), a, d, a.Created)
	switch {
	case errors.Is(err, ErrExpired):
		h.limits.loginFailed(c.addr, now)
		c.fail(m.Ref, messenger.CodeNotFound, refused)
		return
	case errors.Is(err, ErrTaken):
		c.fail(m.Ref, messenger.CodeTaken, fmt.Sprintf("the name %s is taken on this server: enrol with another (assist agent enroll URL TOKEN --id OTHER)", m.User))
		return
	case err != nil:
		c.internal(m.Ref, "enrol", err)
		return
	}
	c.log.Info("messenger: machine enrolled", "user", m.User, "org", org)
	h.welcome(ctx, c, a, d, true, m.Ref)
}

// machines answers "machines": the machines of every organisation the
// account helps, with their presence. Members and outsiders get
// "unauthorized".
func (h *Hub) machines(ctx context.Context, c *conn, m messenger.Message) {
	orgs := h.orgs()
	var helped []string
	if orgs != nil {
		roles, err := orgs.Roles(ctx, c.user)
		if err != nil {
			c.internal(m.Ref, "machines", err)
			return
		}
		for org, role := range roles {
			if helps(role) {
				helped = append(helped, org)
			}
		}
	}
	if len(helped) == 0 {
		c.fail(m.Ref, messenger.CodeUnauthorized, "you are not a helper of any organisation on this server: an admin must add you (assist org add ORG "+c.user+" --role helper)")
		return
	}
	slices.Sort(helped)
	out := []messenger.Machine{}
	for _, org := range helped {
		ms, err := orgs.Machines(ctx, org)
		if err != nil {
			c.internal(m.Ref, "machines", err)
			return
		}
		states, err := statesOf(ctx, h.bus, ms, func(x OrgMachine) string { return x.User })
		if err != nil {
			c.internal(m.Ref, "machines", err)
			return
		}
		for _, x := range ms {
			out = append(out, messenger.Machine{User: x.User, Name: x.Name, Display: x.Display, Org: org, State: states[x.User]})
		}
	}
	c.reply(m.Ref, messenger.Message{Type: messenger.TypeMachines, Machines: out})
}

// offerOrg returns the organisation under which from may offer help to
// the machine to: to is a machine of an organisation where from is a
// helper or admin, and kind is an offer. nil, nil: no such organisation
// (the caller answers as for a stranger).
func (h *Hub) offerOrg(ctx context.Context, from, to, kind string) (*messenger.Org, error) {
	orgs := h.orgs()
	if orgs == nil || kind != messenger.KindOffer {
		return nil, nil
	}
	org, err := orgs.MachineOrg(ctx, to)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	roles, err := orgs.Roles(ctx, from)
	if err != nil {
		return nil, err
	}
	if !helps(roles[org]) {
		return nil, nil
	}
	o, err := orgs.Org(ctx, org)
	if err != nil {
		return nil, err
	}
	return &messenger.Org{Name: o.Name, Display: o.Display, Policy: o.Policy}, nil
}

// tokenTTL is how long a token made through the messenger stays valid.
const tokenTTL = 24 * time.Hour

// enrolToken answers "enrol-token": an admin of the organisation gets a
// new enrolment token; anyone else gets "unauthorized" (also for an
// organisation that does not exist: one answer for both).
func (h *Hub) enrolToken(ctx context.Context, c *conn, m messenger.Message) {
	orgs := h.orgs()
	notAdmin := "you are not an admin of " + m.Organisation + ": its admins make enrolment tokens"
	if orgs == nil {
		c.fail(m.Ref, messenger.CodeUnauthorized, notAdmin)
		return
	}
	roles, err := orgs.Roles(ctx, c.user)
	if err != nil {
		c.internal(m.Ref, "enrol-token", err)
		return
	}
	if roles[m.Organisation] != messenger.OrgAdmin {
		c.fail(m.Ref, messenger.CodeUnauthorized, notAdmin)
		return
	}
	uses := max(m.Uses, 1)
	tok := NewToken()
	now := h.cfg.Now()
	expires := now.Add(tokenTTL).Truncate(time.Second)
	if err := orgs.AddToken(ctx, m.Organisation, TokenHash(tok), uses, expires, now); err != nil {
		c.internal(m.Ref, "enrol-token", err)
		return
	}
	c.log.Info("messenger: enrolment token made", "org", m.Organisation, "by", c.user, "uses", uses)
	c.reply(m.Ref, messenger.Message{Type: messenger.TypeEnrolToken, Organisation: m.Organisation, Token: tok, Expires: expires})
}
