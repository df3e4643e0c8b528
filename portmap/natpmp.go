package portmap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	natpmp "github.com/jackpal/go-nat-pmp"
)

// mapNATPMP asks the default gateway for a mapping with NAT-PMP (RFC 6886).
// The client library cannot be interrupted, so each call gets the time
// left before ctx's deadline; a success that arrives after the race is
// decided is deleted by the race.
func mapNATPMP(ctx context.Context, req request) (*lease, error) {
	gw, err := defaultGateway()
	if err != nil {
		return nil, err
	}
	where := "gateway " + gw.String()
	client := func(ctx context.Context) (*natpmp.Client, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		timeout := requestTimeout
		if d, ok := ctx.Deadline(); ok {
			timeout = time.Until(d)
		}
		return natpmp.NewClientWithTimeout(gw.AsSlice(), timeout), nil
	}
	wrap := func(op string, err error) error {
		if errors.Is(err, syscall.ECONNREFUSED) || isTimeout(err) {
			// ICMP port unreachable, or silence: no NAT-PMP server.
			return fmt.Errorf("%s: %w", op, &noAnswerError{where: where})
		}
		return fmt.Errorf("%s: %s: %w", where, op, err)
	}

	c, err := client(ctx)
	if err != nil {
		return nil, err
	}
	ea, err := c.GetExternalAddress()
	if err != nil {
		return nil, wrap("external address", err)
	}
	ext := netip.AddrFrom4(ea.ExternalIPAddress)
	if ext.IsUnspecified() {
		return nil, fmt.Errorf("%s: router reports no external address: is it connected?", where)
	}
	secs := int(min(req.lifetime/time.Second, 1<<31-1))
	add := func(ctx context.Context, suggested int) (netip.AddrPort, time.Duration, error) {
		c, err := client(ctx)
		if err != nil {
			return netip.AddrPort{}, 0, err
		}
		r, err := c.AddPortMapping(req.proto, req.internalPort, suggested, secs)
		if err != nil {
			return netip.AddrPort{}, 0, wrap("map port", err)
		}
		if r.MappedExternalPort == 0 {
			return netip.AddrPort{}, 0, fmt.Errorf("%s: router mapped port 0", where)
		}
		return netip.AddrPortFrom(ext, r.MappedExternalPort), time.Duration(r.PortMappingLifetimeInSeconds) * time.Second, nil
	}
	external, granted, err := add(ctx, req.internalPort)
	if err != nil {
		return nil, err
	}
	l := &lease{method: "natpmp", external: external, lifetime: granted}
	l.renew = func(ctx context.Context) (netip.AddrPort, time.Duration, error) {
		// Ask for the same external port again; the router says which
		// one it kept.
		return add(ctx, int(l.external.Port()))
	}
	l.remove = func(ctx context.Context) error {
		c, err := client(ctx)
		if err != nil {
			return err
		}
		// RFC 6886 §3.4: lifetime 0 and external port 0 delete the mapping.
		if _, err := c.AddPortMapping(req.proto, req.internalPort, 0, 0); err != nil {
			return fmt.Errorf("%s: delete: %w", where, err)
		}
		return nil
	}
	return l, nil
}

// isTimeout recognises the library's timeout, which is a plain error.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	if errors.As(err, &t) && t.Timeout() {
		return true
	}
	return err != nil && err.Error() == "Timed out trying to contact gateway"
}
