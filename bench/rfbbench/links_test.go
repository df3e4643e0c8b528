package main

import (
	"context"
	"image"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/assist-project/assist/screen"
)

func TestParseLinks(t *testing.T) {
	tests := []struct {
		in   string
		want []linkSpec
		err  string
	}{
		{"default", []linkSpec{{20e6, 40 * time.Millisecond, 0}, {5e6, 60 * time.Millisecond, 0}, {20e6, 40 * time.Millisecond, 0.01}}, ""},
		{"512k/200ms/2.5%", []linkSpec{{512e3, 200 * time.Millisecond, 0.025}}, ""},
		{"20M", nil, "want RATE/RTT"},
		{"fast/40ms", nil, "bad rate"},
		{"20M/soon", nil, "bad round-trip"},
		{"20M/40ms/1", nil, "bad loss"},
		{"20M/40ms/101%", nil, "bad loss"},
		{"", nil, "no link"},
	}
	for _, tt := range tests {
		got, err := parseLinks(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseLinks(%q) error %v, want one containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("parseLinks(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if s := (linkSpec{20e6, 40 * time.Millisecond, 0.01}).String(); s != "20 Mbit/s 40 ms 1% loss" {
		t.Errorf("String() = %q", s)
	}
}

// TestSameScreen checks the pixel comparison of the time to lossless:
// padding bytes do not count, one channel off by one does, except inside
// the mask.
func TestSameScreen(t *testing.T) {
	r := image.Rect(0, 0, 8, 4)
	a, b := screen.NewImage(r), screen.NewImage(r)
	for i := range a.Pix {
		a.Pix[i], b.Pix[i] = byte(i), byte(i)
	}
	if !sameScreen(a, b, image.Rectangle{}) {
		t.Fatal("equal images differ")
	}
	b.Pix[b.PixOffset(5, 2)+3] ^= 0xff // padding
	if !sameScreen(a, b, image.Rectangle{}) {
		t.Error("a difference in the padding byte counted")
	}
	b.Pix[b.PixOffset(5, 2)+1]++ // green
	if sameScreen(a, b, image.Rectangle{}) {
		t.Error("a pixel off by one in green did not count")
	}
	if !sameScreen(a, b, image.Rect(4, 1, 6, 3)) {
		t.Error("a difference inside the mask counted")
	}
	if sameScreen(a, screen.NewImage(image.Rect(0, 0, 8, 5)), image.Rectangle{}) {
		t.Error("images of different sizes are the same")
	}

	shadow := screen.NewImage(r)
	if !syncRect(shadow, a, image.Rect(0, 0, 2, 2)) {
		t.Error("syncRect reported no change copying new pixels")
	}
	if syncRect(shadow, a, image.Rect(0, 0, 2, 2)) {
		t.Error("syncRect reported a change copying the same pixels again")
	}
}

// TestLinksSmoke runs the benchmark across one emulated link in its
// quick mode with every server and the small-change workload, end to end:
// namespaces, the link, assist vnc, the references that are installed,
// assist invite and join directly and through assist serve (WebRTC direct
// and relayed). It checks only that every row is there with sane values;
// no timing but the one-way delay, which no row can beat.
func TestLinksSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds assist and runs it across an emulated link")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and TUN devices")
	}
	for _, tool := range []string{"Xvfb", "ip", "iptables", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian packages xvfb, iproute2, iptables)", tool)
		}
	}
	defer goleak.VerifyNone(t)
	bin := filepath.Join(t.TempDir(), "assist")
	args := []string{"build", "-o", bin}
	if tags := os.Getenv("ASSIST_BUILD_TAGS"); tags != "" {
		args = append(args, "-tags", tags)
	}
	build := exec.Command("go", append(args, "github.com/assist-project/assist/cmd/assist")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/assist: %v\n%s", err, out)
	}

	link := linkSpec{Rate: 20e6, RTT: 40 * time.Millisecond}
	want := []string{"assist", serverSession, serverWebRTC, serverRelay}
	for _, ref := range []struct{ name, bin string }{{"x11vnc", "x11vnc"}, {"tigervnc", "X0tigervnc"}} {
		if _, err := exec.LookPath(ref.bin); err == nil {
			want = append(want, ref.name)
		} else {
			t.Logf("%s not installed: no %s row", ref.bin, ref.name)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	results, err := runLinks(ctx, linkConfig{
		links: []linkSpec{link}, servers: linkServers, workloads: []string{"small"},
		assist: bin, size: image.Pt(1280, 800), repeat: 1, lossless: 2 * time.Second, probe: true,
		set: settings{viewer: viewerOptions{Quality: 8, Compress: 2}, warmup: time.Second, duration: 2 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	writeLinkTable(&table, results, 2*time.Second)
	t.Logf("\n%s", table.String())
	for _, name := range want {
		i := slices.IndexFunc(results, func(r Result) bool { return r.Server == name })
		if i < 0 {
			t.Errorf("no row for %s", name)
			continue
		}
		r := results[i]
		oneWay := float64(link.RTT.Milliseconds()) / 2
		switch {
		case r.Link != link.String() || r.Workload != "small":
			t.Errorf("%s: row %+v: want link %q, workload small", name, r, link)
		case r.Drawn == 0 || r.Shown == 0 || r.Updates == 0 || r.Bytes == 0:
			t.Errorf("%s: row %+v: want changes drawn and shown, updates and bytes received", name, r)
		case r.LatencyMedianMS < oneWay:
			t.Errorf("%s: median latency %.1f ms, below the link's one-way delay of %.0f ms: the viewer did not see the desktop across the link", name, r.LatencyMedianMS, oneWay)
		case r.LinkBytes < r.Bytes:
			t.Errorf("%s: %d bytes crossed the link, fewer than the viewer's %d", name, r.LinkBytes, r.Bytes)
		case r.LosslessMS == 0:
			t.Errorf("%s: time to lossless not measured", name)
		case r.ProbeDrawn == 0 || r.ProbeShown == 0 || r.ProbeMedianMS < oneWay:
			t.Errorf("%s: probe %d of %d shown, median %.1f ms: want the small change made during the workload seen across the link", name, r.ProbeShown, r.ProbeDrawn, r.ProbeMedianMS)
		}
	}
	for _, r := range results {
		if r.Server == serverRelay && r.Path != "relay-udp" {
			t.Errorf("the relay row took path %q, want relay-udp", r.Path)
		}
		if (r.Server == serverSession || r.Server == serverWebRTC) && r.Path != "direct" {
			t.Errorf("the %s row took path %q, want direct", r.Server, r.Path)
		}
	}
}

func TestParseStep(t *testing.T) {
	tests := []struct {
		in   string
		want *linkStep
		err  string
	}{
		{"", nil, ""},
		{"5M@3s", &linkStep{5e6, 3 * time.Second}, ""},
		{"512k@1500ms", &linkStep{512e3, 1500 * time.Millisecond}, ""},
		{"5M", nil, "want RATE@TIME"},
		{"slow@3s", nil, "bad rate"},
		{"5M@later", nil, "a time into the measurement"},
		{"5M@-1s", nil, "a time into the measurement"},
	}
	for _, tt := range tests {
		got, err := parseStep(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseStep(%q) error %v, want one containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
			t.Errorf("parseStep(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	l := linkSpec{20e6, 40 * time.Millisecond, 0.01}
	st := linkStep{5e6, 3 * time.Second}
	if got := st.after(l); got != (linkSpec{5e6, 40 * time.Millisecond, 0.01}) {
		t.Errorf("after = %v: the rate changes, delay and loss stay", got)
	}
	name := st.name(l)
	if want := "20 Mbit/s 40 ms 1% loss, 5 Mbit/s from 3s"; name != want {
		t.Errorf("name = %q, want %q", name, want)
	}
	if goal, ok := probeGoal(name); !ok || math.Abs(goal-24.72) > 1e-9 {
		t.Errorf("probeGoal(%q) = %v, %v: want the link's own goal, 24.72", name, goal, ok)
	}
}
