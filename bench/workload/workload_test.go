package workload

import (
	"context"
	"image"
	"os/exec"
	"testing"
	"time"

	"github.com/assist-project/assist/bench/marker"
)

func startDesktop(t *testing.T) *Desktop {
	t.Helper()
	if _, err := exec.LookPath("Xvfb"); err != nil {
		t.Skip("Xvfb not installed: the workloads need an X server to draw on")
	}
	x, err := StartXvfb(image.Pt(1280, 800))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	var d *Desktop
	for i := 0; ; i++ { // Xvfb reports its display a moment before it accepts connections
		d, err = Open(x.Display)
		if err == nil {
			break
		}
		if i == 50 {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(d.Close)
	return d
}

// TestWorkloadsDrawMarkers draws the scene and a few changes of every
// workload and reads the markers back from the X server.
func TestWorkloadsDrawMarkers(t *testing.T) {
	d := startDesktop(t)
	if got := d.Size(); got != image.Pt(1280, 800) {
		t.Fatalf("Size = %v", got)
	}
	for _, w := range All(d.Size()) {
		t.Run(w.Name(), func(t *testing.T) {
			if err := w.Setup(d); err != nil {
				t.Fatal(err)
			}
			var last uint64
			next, err := Run(context.Background(), d, w, 1, 3*time.Second/time.Duration(w.Rate()),
				func(n uint64, t0 time.Time) { last = n })
			if err != nil {
				t.Fatal(err)
			}
			if last == 0 || next != last+1 {
				t.Fatalf("Run drew up to %d and returned %d", last, next)
			}
			img, err := d.Grab(marker.Bounds(w.Marker()))
			if err != nil {
				t.Fatal(err)
			}
			if v, ok := marker.Decode(img, w.Marker()); !ok || uint64(v) != last {
				t.Errorf("marker on screen = %d, %v; want %d", v, ok, last)
			}
		})
	}
}

func TestSceneDeterministic(t *testing.T) {
	a, b := Scene(64, 48, 1.5, 3), Scene(64, 48, 1.5, 3)
	if string(a.Pix) != string(b.Pix) {
		t.Error("Scene differs between calls with the same arguments")
	}
	if c := Scene(64, 48, 1.6, 3); string(a.Pix) == string(c.Pix) {
		t.Error("Scene does not change over time")
	}
}

func TestLogLine(t *testing.T) {
	for n := uint64(0); n < 100; n++ {
		if s := logLine(n, 213); len(s) == 0 || len(s) > 213 {
			t.Fatalf("logLine(%d) has length %d", n, len(s))
		}
	}
	if a, b := logLine(5, 40), logLine(5, 40); a != b {
		t.Error("logLine is not deterministic")
	}
}

// TestProbe runs every workload with a probe and reads the probe's marker
// back: it shows the probe's last number even where the workload draws
// over it (full screen), and stays clear of the workload's own marker.
func TestProbe(t *testing.T) {
	d := startDesktop(t)
	at := ProbeAt(d.Size())
	for _, w := range All(d.Size()) {
		t.Run(w.Name(), func(t *testing.T) {
			if marker.Bounds(at).Overlaps(marker.Bounds(w.Marker())) {
				t.Fatalf("probe at %v overlaps the workload's marker at %v", at, w.Marker())
			}
			if err := w.Setup(d); err != nil {
				t.Fatal(err)
			}
			var probes []uint64
			p := &Probe{At: at, Rate: 20, Drawn: func(n uint64, t0 time.Time) { probes = append(probes, n) }}
			var last uint64
			if _, err := RunProbed(context.Background(), d, w, 1, 500*time.Millisecond,
				func(n uint64, t0 time.Time) { last = n }, p); err != nil {
				t.Fatal(err)
			}
			if len(probes) < 2 || last == 0 {
				t.Fatalf("probe changes %v, workload changes up to %d: want both", probes, last)
			}
			for i, n := range probes {
				if n != uint64(i+1) {
					t.Fatalf("probe changes %v: want 1, 2, ...", probes)
				}
			}
			img, err := d.Grab(marker.Bounds(at))
			if err != nil {
				t.Fatal(err)
			}
			if v, ok := marker.Decode(img, at); !ok || uint64(v) != probes[len(probes)-1] {
				t.Errorf("probe marker on screen = %d, %v; want %d", v, ok, probes[len(probes)-1])
			}
			img, err = d.Grab(marker.Bounds(w.Marker()))
			if err != nil {
				t.Fatal(err)
			}
			if v, ok := marker.Decode(img, w.Marker()); !ok || uint64(v) != last {
				t.Errorf("workload marker on screen = %d, %v; want %d", v, ok, last)
			}
		})
	}
}
