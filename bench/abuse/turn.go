package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/assist-project/assist/server"
)

// probeTURN is probe 6: a novice and an expert on the same address pair
// (a self-pairing, all an attacker needs to get relay credentials), then
// a novice and an expert on two addresses; for each, the TURN URLs with
// credentials in the expert's and the novice's "paired".
func probeTURN(ctx context.Context, ep *endpoint, rep *report) error {
	for _, c := range []struct {
		title, target, novice, expert string
	}{
		{"TURN credentials for a self-pairing (one address)", "0", addrTURNSelf, addrTURNSelf},
		{"TURN credentials for a pairing of two addresses", "more than 0, the relay still serves real pairings", addrTURNNovice, addrTURNExpert},
	} {
		seen, fail := turnPairing(ctx, ep, c.novice, c.expert)
		exp, nov := seen.expert, seen.novice
		res := result{Probe: "turn", Title: c.title, Target: c.target}
		if fail != "" {
			res.Figure = "no pairing: " + fail
			res.Values = map[string]any{"paired": false, "failure": fail}
		} else {
			res.Figure = fmt.Sprintf("%d TURN URLs with credentials to the expert, %d to the novice", exp.with, nov.with)
			if seen.iceFail != "" {
				res.Figure += "; GET /v1/ice: " + seen.iceFail
			} else {
				res.Figure += fmt.Sprintf("; %d from GET /v1/ice", seen.ice.with)
			}
			if exp.without+nov.without > 0 {
				res.Details = []string{fmt.Sprintf("TURN URLs without credentials: %d to the expert, %d to the novice", exp.without, nov.without)}
			}
			res.Values = map[string]any{"paired": true, "expert_turn": exp.with, "novice_turn": nov.with,
				"expert_turn_without_credentials": exp.without, "novice_turn_without_credentials": nov.without,
				"ice_endpoint_turn": seen.ice.with, "ice_endpoint_failure": seen.iceFail}
		}
		rep.add(res)
	}
	return nil
}

// turnCount is the TURN URLs one end was given, with and without
// credentials.
type turnCount struct{ with, without int }

// turnSeen is what both ends of a pairing were given: in "paired", and
// by GET /v1/ice (asked from the expert's address).
type turnSeen struct {
	expert, novice, ice turnCount
	iceFail             string // why GET /v1/ice gave nothing
}

// turnPairing pairs a novice on novAddr with an expert on expAddr and counts
// the TURN URLs each is given; fail says what went wrong instead.
func turnPairing(ctx context.Context, ep *endpoint, novAddr, expAddr string) (seen turnSeen, fail string) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var others tally
	id, err := freshID()
	if err != nil {
		return seen, "id: " + err.Error()
	}
	nd, err := ep.from(novAddr)
	if err != nil {
		return seen, err.Error()
	}
	defer nd.close()
	ed, err := ep.from(expAddr)
	if err != nil {
		return seen, err.Error()
	}
	defer ed.close()
	np, err := nd.dialPeer(ctx)
	if err != nil {
		return seen, "novice dial: " + dialKind(err)
	}
	defer np.close()
	if err := np.send(ctx, registerMsg(id)); err != nil {
		return seen, "novice register: send failed"
	}
	if _, f := await(ctx, np, server.TypeRegistered, &others); f != "" {
		return seen, "novice register: " + f
	}
	xp, err := ed.dialPeer(ctx)
	if err != nil {
		return seen, "expert dial: " + dialKind(err)
	}
	defer xp.close()
	if err := xp.send(ctx, server.Message{Type: server.TypeJoin, ID: id}); err != nil {
		return seen, "expert join: send failed"
	}
	em, f := await(ctx, xp, server.TypePaired, &others)
	if f != "" {
		return seen, "expert join: " + f
	}
	nm, f := await(ctx, np, server.TypePaired, &others)
	if f != "" {
		return seen, "novice paired: " + f
	}
	seen.expert.with, seen.expert.without = turnEntries(em.ICE)
	seen.novice.with, seen.novice.without = turnEntries(nm.ICE)
	// The same session's ICE servers over HTTPS, as GET /v1/ice hands them
	// to either end.
	if list, err := ed.iceServers(ctx, em.Session); err != nil {
		seen.iceFail = err.Error()
	} else {
		seen.ice.with, seen.ice.without = turnEntries(list)
	}
	_ = xp.send(ctx, server.Message{Type: server.TypeBye, Session: em.Session, Reason: "done"})
	return seen, ""
}

// iceServers asks GET /v1/ice for session's ICE servers, from the dialer's
// address. A refusal is an error naming the HTTP status.
func (d *dialer) iceServers(ctx context.Context, session string) ([]server.ICEServer, error) {
	u := "https://" + d.ep.host + "/v1/ice?session=" + url.QueryEscape(session)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("request failed: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var body struct {
		ICE []server.ICEServer `json:"ice"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	return body.ICE, nil
}
