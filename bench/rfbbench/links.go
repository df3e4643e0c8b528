package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/assist-project/assist/bench/linkem"
	"github.com/assist-project/assist/internal/netns"
)

// linkSpec is one emulated link: the same rate, half the round trip and
// the same loss in each direction.
type linkSpec struct {
	Rate int64 // bits/s
	RTT  time.Duration
	Loss float64 // 0..1
}

// defaultLinks are the links of issue 13: a good home line, a DSL line,
// and the good line losing 1% of its packets.
const defaultLinks = "20M/40ms,5M/60ms,20M/40ms/1%"

// String names the link as the table shows it: "20 Mbit/s 40 ms".
func (l linkSpec) String() string {
	s := fmt.Sprintf("%g Mbit/s %d ms", float64(l.Rate)/1e6, l.RTT.Milliseconds())
	if l.Loss > 0 {
		s += fmt.Sprintf(" %g%% loss", 100*l.Loss)
	}
	return s
}

// direction is one direction of the link.
func (l linkSpec) direction() linkem.Direction {
	return linkem.Direction{Rate: l.Rate, Delay: l.RTT / 2, Loss: l.Loss}
}

// parseLinks reads a comma-separated list of RATE/RTT[/LOSS%], such as
// "20M/40ms,5M/60ms/1%"; "default" stands for defaultLinks.
func parseLinks(s string) ([]linkSpec, error) {
	if s == "default" {
		s = defaultLinks
	}
	var out []linkSpec
	for _, f := range split(s) {
		parts := strings.Split(f, "/")
		if len(parts) < 2 || len(parts) > 3 {
			return nil, fmt.Errorf("bad link %q: want RATE/RTT or RATE/RTT/LOSS%%, such as 20M/40ms/1%%", f)
		}
		var l linkSpec
		var err error
		if l.Rate, err = parseRate(parts[0]); err != nil {
			return nil, fmt.Errorf("bad rate in link %q: want bits/s with k or M, such as 20M", f)
		}
		if l.RTT, err = time.ParseDuration(parts[1]); err != nil || l.RTT < 0 {
			return nil, fmt.Errorf("bad round-trip time in link %q: want a duration such as 40ms", f)
		}
		if len(parts) == 3 {
			loss, err := strconv.ParseFloat(strings.TrimSuffix(parts[2], "%"), 64)
			if err != nil || !strings.HasSuffix(parts[2], "%") || loss < 0 || loss > 100 {
				return nil, fmt.Errorf("bad loss in link %q: want a percentage such as 1%%", f)
			}
			l.Loss = loss / 100
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, errors.New("no link in -links")
	}
	return out, nil
}

// linkStep is a change of the link's rate during each workload's
// measured time, as when a home line slows down (someone else starts an
// upload, a laptop moves away from the access point): at At the rate
// becomes Rate, the delay and loss stay.
type linkStep struct {
	Rate int64 // bits/s
	At   time.Duration
}

// parseStep reads RATE@TIME, such as "5M@3s"; "" is no step.
func parseStep(s string) (*linkStep, error) {
	if s == "" {
		return nil, nil
	}
	rate, at, ok := strings.Cut(s, "@")
	if !ok {
		return nil, fmt.Errorf("bad -step %q: want RATE@TIME, such as 5M@3s", s)
	}
	r, err := parseRate(rate)
	if err != nil {
		return nil, fmt.Errorf("bad -step %q: %w", s, err)
	}
	d, err := time.ParseDuration(at)
	if err != nil || d <= 0 {
		return nil, fmt.Errorf("bad -step %q: want a time into the measurement such as 3s after the @", s)
	}
	return &linkStep{Rate: r, At: d}, nil
}

// after is link l once the step has happened.
func (st linkStep) after(l linkSpec) linkSpec {
	l.Rate = st.Rate
	return l
}

// name is how a link with the step shows in the table: its name (still
// the one probeGoal reads) and the step.
func (st linkStep) name(l linkSpec) string {
	return fmt.Sprintf("%s, %g Mbit/s from %v", l, float64(st.Rate)/1e6, st.At)
}

// parseRate reads a link's rate in bits/s, such as 20M.
func parseRate(s string) (int64, error) {
	r, err := linkem.ParseRate(s)
	if err != nil || r <= 0 {
		return 0, errors.New("bad rate: want bits/s with k or M, such as 20M")
	}
	return r, nil
}

// The addresses of the benchmark's network.
var (
	noviceAddr = netip.MustParsePrefix("10.99.0.1/30") // the novice, on the emulated link
	inetLink   = netip.MustParsePrefix("10.99.0.2/30") // the internet's end of it
	inetAddr   = netip.MustParsePrefix("10.99.1.1/24") // the internet towards the expert; assist serve's address
	expertAddr = netip.MustParsePrefix("10.99.1.2/24") // the expert
)

// topology is the benchmark's network, three namespaces with unique
// names:
//
//	novice 10.99.0.1 ==emulated link== 10.99.0.2 internet 10.99.1.1 --veth-- 10.99.1.2 expert
//
// The emulated link is the novice's home line; the internet, where assist
// serve runs, and the expert's side are fast. Every path to the novice's
// desktop (a VNC server's port, a direct session, WebRTC direct or relayed
// by the server's TURN) crosses the link.
type topology struct {
	novice, inet, expert string
	link                 *linkem.Link
	created              []string
}

// newTopology builds the network with the link's first settings.
func newTopology(first linkSpec) (_ *topology, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("-links needs root: network namespaces and TUN devices")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("-links needs %s (Debian packages iproute2, iptables)", tool)
		}
	}
	prefix, err := netns.UniquePrefix("lk")
	if err != nil {
		return nil, err
	}
	t := &topology{novice: prefix + "novice", inet: prefix + "inet", expert: prefix + "expert"}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Close())
		}
	}()
	for _, ns := range []string{t.novice, t.inet, t.expert} {
		if err := netns.Create(ns); err != nil {
			return nil, err
		}
		t.created = append(t.created, ns)
	}
	d := first.direction()
	// In a process of its own: this one decodes the viewer's updates,
	// which would delay the link's packets (linkem.NewProcess).
	t.link, err = linkem.NewProcess(
		linkem.Endpoint{Netns: t.novice, Device: "wan0", Addr: noviceAddr},
		linkem.Endpoint{Netns: t.inet, Device: "lk0", Addr: inetLink}, d, d)
	if err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"link", "add", "e0", "netns", t.inet, "type", "veth", "peer", "name", "eth0", "netns", t.expert},
		{"-n", t.inet, "addr", "add", inetAddr.String(), "dev", "e0"},
		{"-n", t.expert, "addr", "add", expertAddr.String(), "dev", "eth0"},
		{"-n", t.inet, "link", "set", "e0", "up"},
		{"-n", t.expert, "link", "set", "eth0", "up"},
		{"-n", t.novice, "route", "add", "default", "via", inetLink.Addr().String(), "dev", "wan0"},
		{"-n", t.expert, "route", "add", "default", "via", inetAddr.Addr().String()},
	} {
		if err := netns.IP(args...); err != nil {
			return nil, err
		}
	}
	if err := t.run(t.inet, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"); err != nil {
		return nil, err
	}
	return t, nil
}

// setLink changes the emulated link.
func (t *topology) setLink(l linkSpec) error {
	d := l.direction()
	return t.link.Set(d, d)
}

// linkBytes counts the bytes the link delivered towards the expert.
func (t *topology) linkBytes() uint64 {
	toExpert, _ := t.link.Stats()
	return toExpert.DeliveredBytes
}

// blockDirect stops (on) or allows (off) every packet the internet would
// forward between the novice and the expert, so that the only way left
// is through the server's own addresses: its TURN relay.
func (t *topology) blockDirect(on bool) error {
	if err := t.run(t.inet, "iptables", "-F", "FORWARD"); err != nil {
		return err
	}
	if !on {
		return nil
	}
	n, e := noviceAddr.Masked().String(), expertAddr.Masked().String()
	if err := t.run(t.inet, "iptables", "-A", "FORWARD", "-s", n, "-d", e, "-j", "DROP"); err != nil {
		return err
	}
	return t.run(t.inet, "iptables", "-A", "FORWARD", "-s", e, "-d", n, "-j", "DROP")
}

// run runs a program in namespace ns to completion.
func (t *topology) run(ns, name string, args ...string) error {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s in %s: %v: %s", name, strings.Join(args, " "), ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// command returns a command that runs name in namespace ns.
func (t *topology) command(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// dialer returns a function that connects from inside namespace ns.
func dialer(ns string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		var c net.Conn
		err := netns.Do(ns, func() error {
			var err error
			c, err = (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
			return err
		})
		return c, err
	}
}

// Close stops the link and deletes the namespaces with whatever still
// runs in them.
func (t *topology) Close() error {
	var errs []error
	if t.link != nil {
		errs = append(errs, t.link.Close())
	}
	for _, ns := range t.created {
		errs = append(errs, netns.Delete(ns))
	}
	return errors.Join(errs...)
}

// forwarder makes a VNC server that listens on the novice's loopback only
// reachable across the link: it accepts on the novice's link address and
// connects each connection to the server, inside the novice's namespace.
// Every VNC server gets the same forwarder, so they compare fairly.
type forwarder struct {
	ln   net.Listener
	to   string
	ns   string
	wg   sync.WaitGroup
	mu   sync.Mutex
	conn []net.Conn
}

// startForwarder listens on the novice's link address, port chosen by the
// system, and forwards to addr.
func startForwarder(ns, addr string) (*forwarder, error) {
	f := &forwarder{to: addr, ns: ns}
	err := netns.Do(ns, func() error {
		var err error
		f.ln, err = net.Listen("tcp", net.JoinHostPort(noviceAddr.Addr().String(), "0"))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("forwarder: %w", err)
	}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

// Addr is where viewers connect.
func (f *forwarder) Addr() string { return f.ln.Addr().String() }

func (f *forwarder) accept() {
	defer f.wg.Done()
	dial := dialer(f.ns)
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		s, err := dial(context.Background(), f.to)
		if err != nil {
			fmt.Fprintf(os.Stderr, "rfbbench: forwarder: %v\n", err)
			c.Close()
			continue
		}
		f.mu.Lock()
		f.conn = append(f.conn, c, s)
		f.mu.Unlock()
		f.wg.Add(2)
		go f.pipe(c, s)
		go f.pipe(s, c)
	}
}

// pipe copies src to dst, then ends both.
func (f *forwarder) pipe(dst, src net.Conn) {
	defer f.wg.Done()
	io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// Close stops accepting, ends every forwarded connection and waits for
// the copies to stop.
func (f *forwarder) Close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conn {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
