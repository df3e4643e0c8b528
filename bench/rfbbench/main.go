// Command rfbbench compares VNC servers on the same X desktop: assist's
// own (`assist vnc`), x11vnc and TigerVNC's X0tigervnc, one at a time,
// under the same drawn workloads (typing, scrolling, video, full-screen
// changes) and with the same client and encodings (Tight, CopyRect, JPEG
// quality 8, compression 2). It reports the latency from the X server
// executing a change to the client having decoded it, updates and bytes
// per second, skipped frames and server CPU, as a Markdown table and
// optionally JSON. scripts/bench.sh builds assist and runs it.
//
// With -links it runs across emulated links instead of on loopback
// (scripts/bench-links.sh): the desktop's servers in a novice's network
// namespace behind an emulated home line (bench/linkem), the viewer in an
// expert's, and besides assist vnc, x11vnc and TigerVNC the session paths
// real users take (assist invite to assist join, directly and through
// assist serve over WebRTC, direct and relayed). Each row then also has
// the display lag, the bytes on the link, assist join's CPU and the time
// for a still screen to become pixel-exact at the viewer.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jezek/xgb"

	"github.com/assist-project/assist/bench/linkem"
	"github.com/assist-project/assist/bench/workload"
	"github.com/assist-project/assist/h264"
)

// config is the benchmark's settings, recorded in the JSON output.
type config struct {
	Duration   string   `json:"duration"`
	Warmup     string   `json:"warmup"`
	Size       string   `json:"size"`
	Servers    []string `json:"servers"`
	Workloads  []string `json:"workloads"`
	Quality    int      `json:"jpeg_quality"`
	Compress   int      `json:"compress_level"`
	Continuous bool     `json:"continuous_updates"`
	Repeat     int      `json:"repeat"`
	ClientJPEG string   `json:"client_jpeg_decoder"`
	// Links are the emulated links of a run with -links.
	Links    []string `json:"links,omitempty"`
	Lossless string   `json:"lossless_wait,omitempty"`
	H264     bool     `json:"h264,omitempty"`
	Scaled   bool     `json:"scaled,omitempty"`
	// Probe: a small change measured during each workload.
	Probe bool `json:"probe,omitempty"`
	// Step: the link's change of rate during each workload (-step).
	Step string `json:"step,omitempty"`
}

func main() {
	linkem.RunForwarder() // -links: the emulated link's own process
	if err := run1(); err != nil {
		fmt.Fprintln(os.Stderr, "rfbbench:", err)
		os.Exit(1)
	}
}

func run1() error {
	duration := flag.Duration("duration", 10*time.Second, "measured time per workload and server")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured drawing before each measurement")
	jsonPath := flag.String("json", "", "also write the results as JSON to this file")
	assistPath := flag.String("assist", "assist", "the assist binary")
	servers := flag.String("servers", "assist,x11vnc,tigervnc", "servers to run, comma-separated")
	workloads := flag.String("workloads", "typing,scrolling,video,fullscreen", "workloads to run, comma-separated")
	quality := flag.Int("quality", 8, "JPEG quality level 0..9 the client asks for; -1 for lossless Tight only")
	compress := flag.Int("compress", 2, "compression level 0..9 the client asks for")
	continuous := flag.Bool("continuous", false, "use continuous updates with servers that support them, instead of one request per update")
	sizeFlag := flag.String("size", "1280x800", "screen size of the Xvfb desktop")
	repeat := flag.Int("repeat", 1, "measure every server this many times, in turn, and report the medians")
	tracePath := flag.String("trace", "", "also write every drawn change and received update to this file, as CSV")
	linksFlag := flag.String("links", "", "run across emulated links between network namespaces instead of on loopback (needs root): RATE/RTT[/LOSS%],... or \"default\" for "+defaultLinks+"; servers then are "+strings.Join(linkServers, ",")+" (session: assist invite to assist join directly; webrtc and relay: through assist serve, relay with direct packets blocked)")
	stepFlag := flag.String("step", "", "with -links: RATE@TIME, such as 5M@3s: at TIME into each workload's measured time the link's rate becomes RATE (delay and loss stay), and the report adds the display lag's p95 in each second after it")
	lossless := flag.Duration("lossless", 0, "after each workload, wait this long for the still screen to become pixel-exact at the viewer (default 5s with -links, off without)")
	short := flag.Bool("short", false, "a quick run for smoke tests: -duration 3s -warmup 1s -lossless 2s unless given")
	probe := flag.Bool("probe", false, "while each workload runs, also change a small marker 5 times a second and report its latency (default on with -links)")
	useH264 := flag.Bool("h264", false, "offer Open H.264 (encoding 50) before Tight; needs a client built with -tags openh264")
	scaled := flag.Bool("scaled", false, "offer assist's private encodings (half resolution for large changing areas on slow paths, and its lossless one for refinement), as assist join does for its viewers (the session servers get them from assist join anyway)")
	flag.Parse()
	given := make(map[string]bool)
	flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if *stepFlag != "" && *linksFlag == "" {
		return errors.New("-step changes an emulated link: give -links too")
	}
	if *short {
		if !given["duration"] {
			*duration = 3 * time.Second
		}
		if !given["warmup"] {
			*warmup = time.Second
		}
		if !given["lossless"] {
			*lossless = 2 * time.Second
		}
	}
	if *linksFlag != "" {
		if !given["servers"] {
			*servers = strings.Join(linkServers, ",")
		}
		if !given["workloads"] {
			*workloads = "small,typing,video,fullscreen"
		}
		if !given["lossless"] && !*short {
			*lossless = 5 * time.Second
		}
		if !given["probe"] {
			*probe = true
		}
	}
	// xgb logs to stderr about missing Xauthority (Xvfb needs none) and
	// about the connection dropping when Xvfb stops at the end.
	xgb.Logger = log.New(io.Discard, "", 0)

	var size image.Point
	if _, err := fmt.Sscanf(*sizeFlag, "%dx%d", &size.X, &size.Y); err != nil || size.X < 640 || size.Y < 480 {
		return fmt.Errorf("bad -size %q: want WxH, at least 640x480", *sizeFlag)
	}
	if *repeat < 1 {
		return errors.New("-repeat must be at least 1")
	}
	if *useH264 && !h264.Available {
		return errors.New("-h264: this rfbbench was built without H.264 (build with -tags openh264; scripts/bench.sh does when libopenh264-dev is installed)")
	}
	if *quality < -1 || *quality > 9 || *compress < 0 || *compress > 9 {
		return errors.New("-quality must be -1..9 and -compress 0..9")
	}
	cfg := config{
		Duration: duration.String(), Warmup: warmup.String(), Size: *sizeFlag,
		Servers: split(*servers), Workloads: split(*workloads),
		Quality: *quality, Compress: *compress, Continuous: *continuous, Repeat: *repeat,
		ClientJPEG: clientJPEG, H264: *useH264, Scaled: *scaled, Probe: *probe,
	}
	fmt.Fprintf(os.Stderr, "rfbbench: the client decodes JPEG with %s\n", clientJPEG)

	// SIGTERM too (timeout(1), a CI step's end): the deferred clean-up
	// deletes the namespaces of -links.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *linksFlag != "" {
		links, err := parseLinks(*linksFlag)
		if err != nil {
			return err
		}
		step, err := parseStep(*stepFlag)
		if err != nil {
			return err
		}
		if step != nil && step.At >= *duration {
			return fmt.Errorf("-step %s comes after the measured -duration %v: give a time within it", *stepFlag, *duration)
		}
		cfg.Step = *stepFlag
		for _, l := range links {
			cfg.Links = append(cfg.Links, l.String())
		}
		cfg.Lossless = lossless.String()
		lc := linkConfig{links: links, servers: cfg.Servers, workloads: cfg.Workloads, assist: *assistPath,
			size: size, repeat: *repeat, lossless: *lossless, probe: *probe, step: step,
			set: settings{viewer: viewerOptions{Quality: *quality, Compress: *compress, Continuous: *continuous, H264: *useH264, Scaled: *scaled},
				warmup: *warmup, duration: *duration}}
		var trace *bufio.Writer
		if *tracePath != "" {
			f, err := os.Create(*tracePath)
			if err != nil {
				return fmt.Errorf("trace: %w", err)
			}
			defer f.Close()
			trace = bufio.NewWriter(f)
			lc.set.trace = trace
		}
		results, err := runLinks(ctx, lc)
		if trace != nil {
			if err := trace.Flush(); err != nil {
				return fmt.Errorf("trace: %w", err)
			}
		}
		if err != nil && len(results) == 0 {
			return err
		}
		table := results
		if *repeat > 1 {
			table = medians(results)
			fmt.Fprintf(os.Stdout, "Medians of %d rounds:\n\n", *repeat)
		}
		if werr := writeLinkTable(os.Stdout, table, *lossless); werr != nil {
			return werr
		}
		if *jsonPath != "" {
			if werr := writeJSON(*jsonPath, cfg, results, table); werr != nil {
				return werr
			}
		}
		return err
	}

	if *lossless > 0 {
		cfg.Lossless = lossless.String()
	}
	x, err := workload.StartXvfb(size)
	if err != nil {
		return err
	}
	defer x.Close()
	desk, err := openDesktop(x.Display)
	if err != nil {
		return err
	}
	defer desk.Close()

	var wls []workload.Workload
	for _, w := range workload.All(desk.Size()) {
		if slices.Contains(cfg.Workloads, w.Name()) {
			wls = append(wls, w)
		}
	}
	if len(wls) == 0 {
		return fmt.Errorf("no known workload in %q", *workloads)
	}

	set := settings{
		viewer:   viewerOptions{Quality: *quality, Compress: *compress, Continuous: *continuous, H264: *useH264, Scaled: *scaled},
		warmup:   *warmup,
		duration: *duration,
		lossless: *lossless,
		probe:    *probe,
	}
	var trace *bufio.Writer
	if *tracePath != "" {
		f, err := os.Create(*tracePath)
		if err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		defer f.Close()
		trace = bufio.NewWriter(f)
		set.trace = trace
	}
	var results []Result
	// Rounds go through every server in turn, so that a disturbance
	// (another process hogging the CPU) hits one round of each rather
	// than every run of one server.
	for round := 1; round <= *repeat; round++ {
		for _, spec := range specs(*assistPath) {
			if !slices.Contains(cfg.Servers, spec.Name) {
				continue
			}
			if _, err := exec.LookPath(spec.Binary); err != nil {
				if round == 1 {
					fmt.Fprintf(os.Stderr, "rfbbench: skipping %s: %s not found\n", spec.Name, spec.Binary)
				}
				continue
			}
			fmt.Fprintf(os.Stderr, "rfbbench: %s on %s (round %d of %d)\n", spec.Name, x.Display, round, *repeat)
			rs, err := benchServer(ctx, spec, x, desk, wls, set)
			for i := range rs {
				rs[i].Round = round
			}
			results = append(results, rs...)
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "rfbbench: %s: %v\n", spec.Name, err)
			}
		}
	}
	if trace != nil {
		if err := trace.Flush(); err != nil {
			return fmt.Errorf("trace: %w", err)
		}
	}
	table := results
	if *repeat > 1 {
		table = medians(results)
		fmt.Fprintf(os.Stdout, "Medians of %d rounds:\n\n", *repeat)
	}
	if err := writeTable(os.Stdout, table); err != nil {
		return err
	}
	if *jsonPath != "" {
		return writeJSON(*jsonPath, cfg, results, table)
	}
	return nil
}

// settings are how each server is measured.
type settings struct {
	viewer           viewerOptions
	warmup, duration time.Duration
	trace            io.Writer // optional: see writeTrace
	lossless         time.Duration
	probe            bool
}

// benchServer starts one server, connects the viewer and runs every
// workload against it.
func benchServer(ctx context.Context, spec serverSpec, x *workload.Xvfb, desk *workload.Desktop,
	wls []workload.Workload, set settings) ([]Result, error) {
	// Start every server on the same calm desktop.
	blank := image.Rectangle{Max: desk.Size()}
	desk.Fill(blank, 0x3a6ea5)
	if err := desk.Sync(); err != nil {
		return nil, err
	}
	srv, err := startServer(ctx, spec, x.Display)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	conn, err := srv.Dial(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	view, err := newViewer(conn, set.viewer)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Name, err)
	}
	defer view.Close()

	r := &run{desk: desk, view: view, serverPID: srv.PID(), xPID: x.PID(),
		warmup: set.warmup, duration: set.duration, trace: set.trace, name: spec.Name, lossless: set.lossless, probe: set.probe}
	var results []Result
	for _, w := range wls {
		fmt.Fprintf(os.Stderr, "rfbbench:   %s\n", w.Name())
		res, err := r.measure(ctx, w)
		if err != nil {
			return results, fmt.Errorf("%s: %w", spec.Name, err)
		}
		res.Server = spec.Name
		if res.PSNRdB > 0 {
			fmt.Fprintf(os.Stderr, "rfbbench:   %s: PSNR %.1f dB at the viewer\n", w.Name(), res.PSNRdB)
		}
		results = append(results, res)
	}
	return results, nil
}

// openDesktop connects to a just-started X server, which may take a
// moment to accept connections after reporting its display.
func openDesktop(display string) (*workload.Desktop, error) {
	var err error
	for i := 0; i < 100; i++ {
		var d *workload.Desktop
		if d, err = workload.Open(display); err == nil {
			return d, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, err
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
