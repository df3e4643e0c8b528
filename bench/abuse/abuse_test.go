package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/assist-project/assist/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseVmRSS(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     int64
		ok       bool
	}{
		{"real", "Name:\tassist\nVmPeak:\t  999 kB\nVmRSS:\t   46820 kB\nRssAnon:\t 30000 kB\n", 46820 << 10, true},
		{"first line", "VmRSS: 1 kB", 1024, true},
		{"no line", "Name:\tkworker\nState:\tI (idle)\n", 0, false},
		{"other unit", "VmRSS:\t 12 MB\n", 0, false},
		{"not a number", "VmRSS:\t lots kB\n", 0, false},
		{"negative", "VmRSS:\t -5 kB\n", 0, false},
		{"huge", "VmRSS:\t 99999999999999999 kB\n", 0, false},
		{"extra field", "VmRSS:\t 5 kB extra\n", 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseVmRSS([]byte(c.in))
			if (err == nil) != c.ok || got != c.want {
				t.Errorf("parseVmRSS(%q) = %d, %v; want %d, ok %v", c.in, got, err, c.want, c.ok)
			}
		})
	}
}

func TestRSSOfThisProcess(t *testing.T) {
	n, err := rssBytes(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if n < 1<<20 {
		t.Errorf("RSS of the test process %d bytes, want at least 1 MiB", n)
	}
}

func TestKind(t *testing.T) {
	for _, c := range []struct {
		in   string
		typ  websocket.MessageType
		want string
	}{
		{`{"type":"paired","session":"s","ice":[]}`, websocket.MessageText, "paired"},
		{`{"type":"error","code":"unknown","message":"no invitation"}`, websocket.MessageText, "error:unknown"},
		// A hardened server's new answers are counted under their names.
		{`{"type":"queued","position":2}`, websocket.MessageText, "queued"},
		{`{"type":"error","code":"too-many","message":"slow down"}`, websocket.MessageText, "error:too-many"},
		{`{"type":"error"}`, websocket.MessageText, "error:(empty)"},
		{`{"type":"Paired\u0000 \n"}`, websocket.MessageText, "?aired???"},
		{`{"type":"` + strings.Repeat("x", 100) + `"}`, websocket.MessageText, strings.Repeat("x", 32)},
		{`{"type":"paired"}`, websocket.MessageBinary, typeUnparseable},
		{`not json`, websocket.MessageText, typeUnparseable},
		{`{"session":"s"}`, websocket.MessageText, typeUnparseable},
		{`{"type":7}`, websocket.MessageText, typeUnparseable},
		{`[]`, websocket.MessageText, typeUnparseable},
	} {
		if got := kind(parseServerMessage(c.typ, []byte(c.in))); got != c.want {
			t.Errorf("kind(%s) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzServerMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"paired","session":"s","ice":[{"urls":["turn:h:1"],"username":"u","credential":"c"}]}`,
		`{"type":"error","code":"busy","message":"m"}`, `{"type":"relay","data":{"a":1}}`, `x`, `{}`, `{"type":""}`,
	} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, text bool) {
		typ := websocket.MessageBinary
		if text {
			typ = websocket.MessageText
		}
		m := parseServerMessage(typ, b)
		k := kind(m)
		if len(k) > len("error:")+32 || k == "" {
			t.Fatalf("kind %q: want 1 to %d bytes", k, len("error:")+32)
		}
		for i := 0; i < len(k); i++ {
			if c := k[i]; c < 0x20 || c > 0x7e {
				t.Fatalf("kind %q holds byte %#x", k, c)
			}
		}
		with, without := turnEntries(m.ICE)
		if with < 0 || without < 0 {
			t.Fatal("negative count")
		}
	})
}

func TestTURNEntries(t *testing.T) {
	ice := []server.ICEServer{
		{URLs: []string{"stun:h:3478"}},
		{URLs: []string{"turn:h:3478?transport=udp", "TURN:h:3478?transport=tcp", "turns:h:5349?transport=tcp"}, Username: "u", Credential: "c"},
		{URLs: []string{"turn:other:3478"}},
		{URLs: []string{"turn:third:3478"}, Username: "u"},
		{URLs: []string{"turnx-not-a-scheme:h", "stuns:h"}, Username: "u", Credential: "c"},
	}
	with, without := turnEntries(ice)
	if with != 3 || without != 2 {
		t.Errorf("turnEntries = %d with, %d without; want 3, 2", with, without)
	}
}

func TestFormatCounts(t *testing.T) {
	if got := formatCounts(nil); got != "none" {
		t.Errorf("formatCounts(nil) = %q", got)
	}
	got := formatCounts(map[string]int{"b": 2, "a": 2, "c": 9, "d": 1})
	if want := "c 9, a 2, b 2, d 1"; got != want {
		t.Errorf("formatCounts = %q, want %q", got, want)
	}
}

func TestParseProbes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // joined; "" for an error
	}{
		{"flood,harvest,held,register,turn", "flood,harvest,held,register,turn"},
		{" turn , flood,turn,", "turn,flood"},
		{"flood,nope", ""},
		{",", ""},
		{"", ""},
	} {
		got, err := parseProbes(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("parseProbes(%q) = %v, want an error", c.in, got)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != c.want {
			t.Errorf("parseProbes(%q) = %v, %v; want %s", c.in, got, err, c.want)
		}
	}
}

func TestNewEndpointLoopbackOnly(t *testing.T) {
	const fp = "sha256:00"
	for _, c := range []struct {
		url, fp string
		ok      bool
	}{
		{"https://127.0.0.1:8443", fp, true},
		{"https://127.3.2.1:1", fp, true},
		{"https://10.0.0.1:8443", fp, false},
		{"https://example.org:8443", fp, false},
		{"https://localhost:8443", fp, false}, // a name could resolve anywhere
		{"https://[::1]:8443", fp, false},     // the probes' sources are IPv4 loopback
		{"http://127.0.0.1:8443", fp, false},
		{"127.0.0.1:8443", fp, false},
		{"https://127.0.0.1:8443", "", false},
	} {
		_, err := newEndpoint(c.url, c.fp)
		if (err == nil) != c.ok {
			t.Errorf("newEndpoint(%q, %q): %v, want ok %v", c.url, c.fp, err, c.ok)
		}
	}
	ep, err := newEndpoint("https://127.0.0.1:8443", fp)
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"10.0.0.1", "::1", "localhost", ""} {
		if _, err := ep.from(src); err == nil {
			t.Errorf("from(%q) accepted a source that is not IPv4 loopback", src)
		}
	}
}

// TestHarvestFound: a live number counts as found only for an answer no
// number that is not live ever got, whatever the server calls its answers.
func TestHarvestFound(t *testing.T) {
	type ans struct {
		n    int
		kind string
		at   time.Duration
	}
	for _, c := range []struct {
		name    string
		live    []int
		answers []ans
		want    map[int]time.Duration
	}{
		{"old server", []int{1, 2, 3}, []ans{
			{5, "error:unknown", 1}, {1, "paired", 2}, {2, "error:offline", 3}, {3, "error:unknown", 4},
		}, map[int]time.Duration{1: 2, 2: 3}},
		{"refusals alike for all", []int{1, 2}, []ans{
			{5, "error:too-many", 1}, {1, "error:too-many", 2}, {6, "error:unknown", 3}, {2, "error:unknown", 4},
		}, map[int]time.Duration{}},
		{"a refusal first, then paired", []int{1}, []ans{
			{5, "error:too-many", 1}, {1, "error:too-many", 2}, {1, "paired", 7}, {1, "queued", 5},
		}, map[int]time.Duration{1: 5}},
		{"a new answer given to dead numbers too", []int{1}, []ans{
			{1, "error:new-code", 1}, {9, "error:new-code", 2},
		}, map[int]time.Duration{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			live := make(map[int]bool)
			for _, n := range c.live {
				live[n] = true
			}
			h := newHarvest(live)
			for _, a := range c.answers {
				h.record(a.n, a.kind, a.at)
			}
			got := h.found()
			if len(got) != len(c.want) {
				t.Fatalf("found %v, want %v", got, c.want)
			}
			for n, at := range c.want {
				if got[n] != at {
					t.Errorf("found %v, want %v", got, c.want)
				}
			}
		})
	}
}

func TestHarvestPairedAll(t *testing.T) {
	h := newHarvest(map[int]bool{4: true, 7: true})
	h.record(4, "paired", 1)
	h.record(4, "paired", 2)
	select {
	case <-h.pairedAll:
		t.Fatal("pairedAll closed with one of two numbers paired")
	default:
	}
	h.record(7, "paired", 3)
	select {
	case <-h.pairedAll:
	default:
		t.Fatal("pairedAll not closed with both numbers paired")
	}
}

func TestHoldData(t *testing.T) {
	if holdData("silent") != nil {
		t.Error("silent mode relays something")
	}
	var s string
	if err := json.Unmarshal(holdData("stall"), &s); err != nil {
		t.Fatalf("stall data is not a JSON string: %v", err)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || string(b) != `{"type":"end-of-candidates"}` {
		t.Errorf("stall data decodes to %q, %v; want rtc's end-of-candidates", b, err)
	}
	if !json.Valid(holdData("garbage")) {
		t.Error("garbage data is not valid JSON: the server would close the attacker's connection instead")
	}
	for mode := range holdModes {
		if mode != "silent" && holdData(mode) == nil {
			t.Errorf("mode %s has no data", mode)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 64}
	if got := tb.lastLine(); got != "(nothing on stderr)" {
		t.Errorf("empty lastLine = %q", got)
	}
	tb.Write([]byte("first line\nassist join: no luck\n\n"))
	if got := tb.lastLine(); got != "assist join: no luck" {
		t.Errorf("lastLine = %q", got)
	}
	tb.Write(bytes.Repeat([]byte("x"), 100))
	if len(tb.b) != 64 || tb.lastLine() != strings.Repeat("x", 64) {
		t.Errorf("kept %d bytes, last line %q; want the last 64", len(tb.b), tb.lastLine())
	}
}

func TestFreshID(t *testing.T) {
	a, err := freshID()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := freshID()
	if a == b || len(a) != 26 || server.ValidateID(a) != nil {
		t.Errorf("freshID gave %q and %q: want two different valid 26-character ids", a, b)
	}
}

// testServer is a real rendezvous server (server.New with its SQLite
// store) on 127.0.0.1, stopped in t.Cleanup.
type testServer struct {
	url, fingerprint, dataDir string
	ep                        *endpoint
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	cert, err := server.LoadOrCreateCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := server.OpenSQLite(context.Background(), filepath.Join(dir, "assist.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st,
		ICEServers: []string{"stun:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=udp"},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	hs.StartTLS()
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
		st.Close()
	})
	ts := &testServer{url: hs.URL, fingerprint: server.CertFingerprint(cert), dataDir: dir}
	if ts.ep, err = newEndpoint(ts.url, ts.fingerprint); err != nil {
		t.Fatal(err)
	}
	return ts
}

// find returns the results whose title starts with prefix.
func find(t *testing.T, rep *report, prefix string) result {
	t.Helper()
	for _, r := range rep.results {
		if strings.HasPrefix(r.Title, prefix) {
			return r
		}
	}
	var titles []string
	for _, r := range rep.results {
		titles = append(titles, r.Title)
	}
	t.Fatalf("no result %q among %q", prefix, titles)
	return result{}
}

// The probes against a real server, in miniature. They assert what the
// probes measure, not the server's limits, so they hold before and after
// the server is hardened.

func TestProbeFloodSmall(t *testing.T) {
	ts := startServer(t)
	var out bytes.Buffer
	rep := &report{w: &out}
	cfg := floodConfig{n: 5, workers: 2, maxTime: 30 * time.Second, idleWait: 0, rssWait: 0, legit: 3, pid: os.Getpid()}
	if err := probeFlood(t.Context(), ts.ep, cfg, rep); err != nil {
		t.Fatal(err)
	}
	held := find(t, rep, "idle connections held by one address")
	if held.Values["accepted"] != 5 || held.Values["peak_open"] != 5 {
		t.Errorf("flood of 5: %s, want 5 accepted and open\n%s", held.Figure, out.String())
	}
	if legit := find(t, rep, "legitimate pairings during the flood"); legit.Values["succeeded"] != 3 {
		t.Errorf("legitimate pairings: %s, want 3/3\n%s", legit.Figure, out.String())
	}
	if rss := find(t, rep, "server memory"); rss.Skipped != "" || rss.Values["rss_peak"].(int64) <= 0 {
		t.Errorf("memory figure: %s\n%s", rss.line(), out.String())
	}
}

func TestProbeTURN(t *testing.T) {
	ts := startServer(t)
	var out bytes.Buffer
	rep := &report{w: &out}
	if err := probeTURN(t.Context(), ts.ep, rep); err != nil {
		t.Fatal(err)
	}
	two := find(t, rep, "TURN credentials for a pairing of two addresses")
	if two.Values["expert_turn"] != 1 || two.Values["novice_turn"] != 1 || two.Values["ice_endpoint_turn"] != 1 {
		t.Errorf("two addresses: %s, want the server's one TURN URL to each end and from /v1/ice\n%s", two.Figure, out.String())
	}
	if self := find(t, rep, "TURN credentials for a self-pairing"); self.Values["paired"] != true {
		t.Errorf("self-pairing: %s, want a pairing\n%s", self.Figure, out.String())
	}
}

func TestProbeRegisterReadsTheStore(t *testing.T) {
	ts := startServer(t)
	var out bytes.Buffer
	rep := &report{w: &out}
	if err := probeRegister(t.Context(), ts.ep, registerConfig{time: 300 * time.Millisecond, workers: 2, dataDir: ts.dataDir, storedWait: 100 * time.Millisecond}, rep); err != nil {
		t.Fatal(err)
	}
	acc := find(t, rep, "registrations accepted from one address")
	if n, _ := acc.Values["accepted"].(int); n < 1 {
		t.Fatalf("no registration accepted: %s\n%s", acc.Figure, out.String())
	}
	if st := find(t, rep, "registrations still stored"); st.Skipped != "" {
		t.Errorf("stored count: %s", st.line())
	}
}

func TestCountStored(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "assist.db")
	st, err := server.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	for _, id := range []string{"a1", "b2", "c3"} {
		if err := st.PutInvitation(t.Context(), server.Invitation{ID: id, Expires: now.Add(time.Hour), Created: now}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := countStored(t.Context(), path, []string{"a1", "c3", "zz"})
	if err != nil || n != 2 {
		t.Errorf("countStored = %d, %v; want 2", n, err)
	}
	if _, err := countStored(t.Context(), filepath.Join(dir, "missing.db"), nil); err == nil {
		t.Error("countStored of a missing database: no error")
	}
}

func TestProbeHarvestSmall(t *testing.T) {
	ts := startServer(t)
	var out bytes.Buffer
	rep := &report{w: &out}
	if err := probeHarvest(t.Context(), ts.ep, harvestConfig{live: 2, time: 2 * time.Second, workers: 2}, rep); err != nil {
		t.Fatal(err)
	}
	r := find(t, rep, "live codes found")
	if r.Skipped != "" || r.Values["live"] != 2 {
		t.Fatalf("harvest: %s, want 2 live invitations\n%s", r.line(), out.String())
	}
	if n, _ := r.Values["answered"].(int64); n < 1 {
		t.Errorf("harvest: no join answered\n%s", out.String())
	}
}
