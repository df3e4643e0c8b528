package relay

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/pion/turn/v5"
)

var errTCPRelay = errors.New("relay: TCP relayed transport (RFC 6062) is not supported")

// allocator hands out the UDP sockets of allocations. It delegates port
// choice to pion and wraps every socket so the bytes it relays are counted.
type allocator struct {
	inner   turn.RelayAddressGenerator
	relayed *atomic.Uint64
}

// newAllocator relays from bindIP, advertising relayIP, on a random port in
// [minPort, maxPort] or on any free port when the range is unset.
func newAllocator(relayIP, bindIP net.IP, minPort, maxPort int, relayed *atomic.Uint64) (*allocator, error) {
	var inner turn.RelayAddressGenerator
	switch {
	case minPort == 0 && maxPort == 0:
		inner = &turn.RelayAddressGeneratorStatic{RelayAddress: relayIP, Address: bindIP.String()}
	case minPort < 1 || maxPort > 65535 || minPort > maxPort:
		return nil, fmt.Errorf("relay: bad relay port range %d-%d", minPort, maxPort)
	default:
		inner = &turn.RelayAddressGeneratorPortRange{
			RelayAddress: relayIP,
			Address:      bindIP.String(),
			MinPort:      uint16(minPort),
			MaxPort:      uint16(maxPort),
			// A busy range should fail the allocation, not spin: pion draws
			// random ports, so retry roughly as often as the range is wide.
			MaxRetries: min(maxPort-minPort+1, 64),
		}
	}
	if err := inner.Validate(); err != nil {
		return nil, fmt.Errorf("relay: relay address generator: %w", err)
	}
	return &allocator{inner: inner, relayed: relayed}, nil
}

// Validate implements turn.RelayAddressGenerator.
func (a *allocator) Validate() error { return nil }

// AllocatePacketConn implements turn.RelayAddressGenerator.
func (a *allocator) AllocatePacketConn(cfg turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	conn, addr, err := a.inner.AllocatePacketConn(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("relay: allocate %s relay socket: %w", cfg.Network, err)
	}
	return &countingConn{PacketConn: conn, n: a.relayed}, addr, nil
}

// AllocateListener implements turn.RelayAddressGenerator. Browsers and
// pion only use UDP relays, so TCP relays are refused (less attack surface).
func (a *allocator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errTCPRelay
}

// AllocateConn implements turn.RelayAddressGenerator; see AllocateListener.
func (a *allocator) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errTCPRelay
}

// countingConn counts the payload bytes an allocation exchanges with its
// peers, in both directions. Inbound datagrams are counted when they reach
// the relay socket, before pion drops those from peers without permission:
// they cost the server bandwidth all the same.
type countingConn struct {
	net.PacketConn
	n *atomic.Uint64
}

func (c *countingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if n > 0 {
		c.n.Add(uint64(n))
	}
	return n, addr, err
}

// WriteTo counts before writing, so that a reader of the counter who has
// seen the peer's answer also sees the request that caused it.
func (c *countingConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	c.n.Add(uint64(len(p)))
	n, err := c.PacketConn.WriteTo(p, addr)
	if unsent := len(p) - n; unsent > 0 {
		c.n.Add(-uint64(unsent)) // two's complement: subtracts
	}
	return n, err
}
