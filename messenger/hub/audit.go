package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/messenger"
)

// The audit trail's server side (issue 11). The server keeps its own
// chain, signed with Config.AuditKey, of every organisation's offer
// (made, accepted, declined, timed out, withdrawn) and of each pairing it
// made for one; devices of an organisation upload their own chains after
// their sessions ("audit-upload"), which the store verifies and keeps only
// if they follow on what it holds; an organisation's admins search them
// ("audit-search") and verify them ("audit-verify").

// auditPage bounds the JSONL of one "audit-entries" page, below
// messenger.MaxMessageBytes with room for the envelope's escapes.
const auditPage = 40 << 10

// auditor returns the hub's audit store, or nil when it keeps none.
func (h *Hub) auditor() (AuditStore, *audit.SQLStore) {
	as, ok := h.store.(AuditStore)
	if !ok || h.cfg.AuditKey == nil {
		return nil, nil
	}
	st, err := as.Audit(h.ctx)
	if err != nil {
		h.log.Error("messenger: audit store", "err", err)
		return nil, nil
	}
	return as, st
}

// auditSession names an offer in the server's entries: a hash of its
// request id, which groups them and opens nothing.
func auditSession(request string) string {
	s := sha256.Sum256([]byte("assist/1 audit request\x00" + request))
	return hex.EncodeToString(s[:8])
}

// auditOffer appends one entry about an organisation's offer r to the
// server's chain. A failure is logged: help is not refused for it.
func (h *Hub) auditOffer(ctx context.Context, org string, r Request, kind audit.Kind, action, reason string) {
	as, st := h.auditor()
	if as == nil {
		return
	}
	novice := r.To
	if a, err := h.store.Account(ctx, r.To); err == nil {
		novice = a.Display
	}
	e := audit.Entry{Kind: kind, Party: audit.PartyServer, Session: auditSession(r.ID), Novice: novice,
		Expert: r.From, Machine: r.To, Action: action, Reason: reason}
	if kind == audit.KindStart {
		e.Action, e.Path = "", "paired by the server"
	}
	stored, err := st.Chain(h.cfg.AuditKey).Append(e)
	if err == nil {
		err = as.MarkServerEntry(ctx, stored.Seq, org)
	}
	if err != nil {
		h.log.Error("messenger: audit entry not recorded", "action", action, "org", org, "err", err)
	}
}

// offerOrgOf returns the organisation of an offer to a machine, "" if r
// is none.
func (h *Hub) offerOrgOf(ctx context.Context, r Request) string {
	orgs := h.orgs()
	if orgs == nil || r.Kind != messenger.KindOffer {
		return ""
	}
	org, err := orgs.MachineOrg(ctx, r.To)
	if err != nil {
		return ""
	}
	return org
}

// auditOrgs returns the organisations whose trail c's chain belongs to:
// a machine's own, or those where the account helps.
func (h *Hub) auditOrgs(ctx context.Context, c *conn) ([]string, error) {
	orgs := h.orgs()
	if orgs == nil {
		return nil, nil
	}
	if org, err := orgs.MachineOrg(ctx, c.user); err == nil {
		return []string{org}, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	roles, err := orgs.Roles(ctx, c.user)
	if err != nil {
		return nil, err
	}
	var out []string
	for org, role := range roles {
		if helps(role) {
			out = append(out, org)
		}
	}
	slices.Sort(out)
	return out, nil
}

// auditUpload answers "audit-upload": the entries must be the logged-in
// device's own chain, from a machine or helper of an organisation.
func (h *Hub) auditUpload(ctx context.Context, c *conn, m messenger.Message) {
	as, st := h.auditor()
	if as == nil {
		c.fail(m.Ref, messenger.CodeInvalid, "this server keeps no audit trail")
		return
	}
	orgs, err := h.auditOrgs(ctx, c)
	if err != nil {
		c.internal(m.Ref, "audit-upload", err)
		return
	}
	if len(orgs) == 0 {
		c.fail(m.Ref, messenger.CodeUnauthorized, "you are not a machine or helper of any organisation on this server: it keeps no audit log of yours")
		return
	}
	key := ed25519.PublicKey(c.dev.Key)
	entries, head, err := audit.ReadUpload(strings.NewReader(m.Audit))
	if err != nil {
		c.fail(m.Ref, messenger.CodeInvalid, "your audit log does not read: "+strings.TrimPrefix(err.Error(), "audit: ")+"; run assist audit verify")
		return
	}
	for _, e := range entries {
		if !bytes.Equal(e.Key, key) {
			c.fail(m.Ref, messenger.CodeInvalid, fmt.Sprintf("entry %d is not signed by this device's key: upload only this device's own audit log", e.Seq))
			return
		}
	}
	if head != nil && !bytes.Equal(head.Key, key) {
		c.fail(m.Ref, messenger.CodeInvalid, "the head is not signed by this device's key")
		return
	}
	if len(entries) > 0 {
		err = st.Upload(ctx, entries, head)
		var bad *audit.BadEntry
		switch {
		case errors.Is(err, audit.ErrFork):
			c.log.Warn("messenger: audit upload contradicts the stored chain", "user", c.user, "device", c.device, "err", err)
			c.fail(m.Ref, messenger.CodeInvalid, "your audit log contradicts what this server stored ("+strings.TrimPrefix(err.Error(), "audit: ")+
				"): it was rewritten since it was uploaded. Keep the file as it is and tell your organisation's admin")
			return
		case errors.As(err, &bad):
			c.fail(m.Ref, messenger.CodeInvalid, "your audit log does not verify: "+strings.TrimPrefix(bad.Error(), "audit: ")+"; run assist audit verify")
			return
		case err != nil && strings.HasPrefix(err.Error(), "audit: the head"):
			c.fail(m.Ref, messenger.CodeInvalid, "your audit log's head does not verify: run assist audit verify")
			return
		case err != nil:
			c.internal(m.Ref, "audit-upload", err)
			return
		}
		for _, org := range orgs {
			if err := as.LinkAuditChain(ctx, key, org, c.user); err != nil {
				c.internal(m.Ref, "audit-upload", err)
				return
			}
		}
	}
	seq, err := st.Last(ctx, key)
	if err != nil {
		c.internal(m.Ref, "audit-upload", err)
		return
	}
	c.reply(m.Ref, messenger.Message{Type: messenger.TypeAuditStored, Seq: &seq})
}

// auditAdmin checks that c is an admin of m's organisation; anyone else
// gets "unauthorized" (also for an organisation that does not exist: one
// answer for both).
func (h *Hub) auditAdmin(ctx context.Context, c *conn, m messenger.Message) (AuditStore, *audit.SQLStore, bool) {
	notAdmin := "you are not an admin of " + m.Organisation + ": its admins search and verify its audit trail"
	orgs := h.orgs()
	if orgs == nil {
		c.fail(m.Ref, messenger.CodeUnauthorized, notAdmin)
		return nil, nil, false
	}
	roles, err := orgs.Roles(ctx, c.user)
	if err != nil {
		c.internal(m.Ref, m.Type, err)
		return nil, nil, false
	}
	if roles[m.Organisation] != messenger.OrgAdmin {
		c.fail(m.Ref, messenger.CodeUnauthorized, notAdmin)
		return nil, nil, false
	}
	as, st := h.auditor()
	if as == nil {
		c.fail(m.Ref, messenger.CodeInvalid, "this server keeps no audit trail")
		return nil, nil, false
	}
	return as, st, true
}

// orgEntries returns org's entries matching q (without Chains): those of
// its people's and machines' chains, and the server's about it, oldest
// first.
func (h *Hub) orgEntries(ctx context.Context, as AuditStore, st *audit.SQLStore, org string, q audit.Query) ([]audit.Entry, error) {
	chains, err := as.AuditChains(ctx, org)
	if err != nil {
		return nil, err
	}
	var out []audit.Entry
	if len(chains) > 0 {
		// A machine's chain is the organisation's; a helper's holds their
		// other sessions too (with contacts, for other organisations):
		// of those, only the entries naming one of its machines.
		ms, err := h.orgs().Machines(ctx, org)
		if err != nil {
			return nil, err
		}
		machines := map[string]bool{}
		for _, m := range ms {
			machines[m.User] = true
		}
		whole := map[string]bool{}
		q.Chains = nil
		for _, o := range chains {
			q.Chains = append(q.Chains, o.Chain)
			whole[string(o.Chain)] = machines[o.User]
		}
		found, err := st.Search(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, e := range found {
			if whole[string(e.Key)] || machines[e.Machine] {
				out = append(out, e)
			}
		}
	}
	mine, err := as.ServerEntries(ctx, org)
	if err != nil {
		return nil, err
	}
	q.Chains = []ed25519.PublicKey{h.cfg.AuditKey.Public().(ed25519.PublicKey)}
	srv, err := st.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	for _, e := range srv {
		if mine[e.Seq] {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b audit.Entry) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// auditSearch answers "audit-search": one page of the organisation's
// entries, for its admins.
func (h *Hub) auditSearch(ctx context.Context, c *conn, m messenger.Message) {
	as, st, ok := h.auditAdmin(ctx, c, m)
	if !ok {
		return
	}
	es, err := h.orgEntries(ctx, as, st, m.Organisation, audit.Query{From: m.Since, Text: m.Text})
	if err != nil {
		c.internal(m.Ref, "audit-search", err)
		return
	}
	var page strings.Builder
	n := 0
	for _, e := range es[min(m.Offset, len(es)):] {
		line := e.Marshal()
		if n > 0 && page.Len()+len(line)+1 > auditPage {
			break
		}
		page.Write(line)
		page.WriteByte('\n')
		n++
	}
	more := m.Offset+n < len(es)
	c.reply(m.Ref, messenger.Message{Type: messenger.TypeAuditEntries, Organisation: m.Organisation, Audit: page.String(), More: more})
}

// auditVerify answers "audit-verify": the verdict on every chain of the
// organisation and on the server's own, for its admins.
func (h *Hub) auditVerify(ctx context.Context, c *conn, m messenger.Message) {
	as, st, ok := h.auditAdmin(ctx, c, m)
	if !ok {
		return
	}
	chains, err := as.AuditChains(ctx, m.Organisation)
	if err != nil {
		c.internal(m.Ref, "audit-verify", err)
		return
	}
	chains = append([]AuditChainOwner{{Chain: h.cfg.AuditKey.Public().(ed25519.PublicKey)}}, chains...)
	out := make([]messenger.AuditChain, 0, len(chains))
	for _, o := range chains {
		rep, err := st.VerifyChain(ctx, o.Chain)
		v := messenger.AuditChain{Key: messenger.B64(o.Chain), User: o.User, Entries: rep.Entries, First: rep.First,
			Last: rep.Last, Pruned: rep.Pruned, HeadChecked: rep.HeadChecked}
		if err != nil {
			v.Bad = strings.TrimPrefix(err.Error(), "audit: ")
			if v.Bad == "" {
				v.Bad = "does not verify"
			}
		}
		out = append(out, v)
	}
	c.log.Info("messenger: audit verified", "org", m.Organisation, "by", c.user, "chains", len(out))
	c.reply(m.Ref, messenger.Message{Type: messenger.TypeAuditVerified, Organisation: m.Organisation, Chains: out})
}

// pruneAudit applies each organisation's retention: a chain is pruned by
// the longest retention of its organisations, and kept whole if any of
// them keeps entries for ever; so is the server's own chain, which
// concerns them all.
func (h *Hub) pruneAudit(ctx context.Context, now time.Time) {
	as, st := h.auditor()
	if as == nil {
		return
	}
	keep, err := as.Retentions(ctx)
	if err != nil {
		h.log.Warn("messenger: audit retention", "err", err)
		return
	}
	longest := map[string]time.Duration{} // by chain
	forever := map[string]bool{}
	var all time.Duration
	allForever := len(keep) == 0
	for org, d := range keep {
		all = max(all, d)
		allForever = allForever || d == 0
		chains, err := as.AuditChains(ctx, org)
		if err != nil {
			h.log.Warn("messenger: audit retention", "err", err)
			return
		}
		for _, o := range chains {
			k := string(o.Chain)
			longest[k] = max(longest[k], d)
			forever[k] = forever[k] || d == 0
		}
	}
	var removed int64
	for k, d := range longest {
		if forever[k] {
			continue
		}
		n, err := st.PruneChain(ctx, ed25519.PublicKey(k), now.Add(-d), h.cfg.AuditKey)
		if err != nil {
			h.log.Warn("messenger: audit retention", "err", err)
			continue
		}
		removed += n
	}
	if !allForever {
		n, err := st.PruneChain(ctx, h.cfg.AuditKey.Public().(ed25519.PublicKey), now.Add(-all), h.cfg.AuditKey)
		if err != nil {
			h.log.Warn("messenger: audit retention", "err", err)
		}
		removed += n
	}
	if removed > 0 {
		h.log.Info("messenger: audit retention removed old entries", "entries", removed)
	}
}
