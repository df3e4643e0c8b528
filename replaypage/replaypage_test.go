package replaypage

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseControl(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"action":"play"}`, true},
		{`{"action":"pause"}`, true},
		{`{"action":"seek","to":1500}`, true},
		{`{"action":"seek","to":0}`, true},
		{`{"action":"seek"}`, false},
		{`{"action":"seek","to":-1}`, false},
		{`{"action":"seek","to":99999999999}`, false},
		{`{"action":"play","to":5}`, false},
		{`{"action":"rewind"}`, false},
		{`{"action":"play","x":1}`, false},
		{`{"action":"play"}{}`, false},
		{`[]`, false},
	} {
		if _, err := parseControl([]byte(tc.body)); (err == nil) != tc.ok {
			t.Errorf("parseControl(%s): %v, want ok %t", tc.body, err, tc.ok)
		}
	}
}

func FuzzParseControl(f *testing.F) {
	f.Add([]byte(`{"action":"seek","to":1500}`))
	f.Add([]byte(`{"action":"play"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseControl(b)
		if err == nil && c.Action == "seek" && (c.To == nil || *c.To < 0) {
			t.Fatalf("accepted %q", b)
		}
	})
}

// fakePlayer records the controls it gets.
type fakePlayer struct {
	mu  sync.Mutex
	got []string
}

func (p *fakePlayer) OpenDisplay(context.Context) (net.Conn, error) { return nil, net.ErrClosed }
func (p *fakePlayer) State() State                                  { return State{At: time.Second, Length: 2 * time.Second} }
func (p *fakePlayer) Play()                                         { p.add("play") }
func (p *fakePlayer) Pause()                                        { p.add("pause") }
func (p *fakePlayer) Seek(at time.Duration)                         { p.add("seek " + at.String()) }
func (p *fakePlayer) add(s string) {
	p.mu.Lock()
	p.got = append(p.got, s)
	p.mu.Unlock()
}

// TestGuard: only the secret's paths answer, and a control POST from
// another origin changes nothing.
func TestGuard(t *testing.T) {
	p := &fakePlayer{}
	s, err := New(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := s.URL(ln)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Serve(ctx, ln) })
	defer wg.Wait()
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(u string) int {
		r, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	base := strings.TrimSuffix(url, "/")
	wrong := base[:strings.LastIndex(base, "/")] + "/nope/"
	for _, c := range []struct {
		url  string
		want int
	}{{url, 200}, {url + "state", 200}, {url + "replay.js", 200}, {url + "novnc/core/rfb.js", 200}, {wrong, 404}, {wrong + "state", 404}, {url + "secret.txt", 404}} {
		if got := get(c.url); got != c.want {
			t.Errorf("GET %s: %d, want %d", c.url, got, c.want)
		}
	}
	post := func(origin, body string) int {
		req, _ := http.NewRequest(http.MethodPost, url+"control", strings.NewReader(body))
		req.Header.Set("Origin", origin)
		r, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if got := post("https://evil.example", `{"action":"pause"}`); got != http.StatusForbidden {
		t.Errorf("a cross-site control: %d", got)
	}
	origin := "http://" + ln.Addr().String()
	if got := post(origin, `{"action":"seek","to":1500}`); got != http.StatusNoContent {
		t.Errorf("seek: %d", got)
	}
	if got := post(origin, `{"action":"eject"}`); got != http.StatusBadRequest {
		t.Errorf("eject: %d", got)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.got) != 1 || p.got[0] != "seek 1.5s" {
		t.Errorf("the player got %q, want one seek to 1.5s", p.got)
	}
}
