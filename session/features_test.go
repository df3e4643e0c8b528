package session

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDecodeFeatures(t *testing.T) {
	many := make([]string, MaxFeatures+1)
	for i := range many {
		many[i] = `"f` + strings.Repeat("x", i%20) + string(rune('a'+i%26)) + `"`
	}
	tests := []struct {
		in   string
		want Feature
		ok   bool
	}{
		{`{"type":"features","features":["release","files"]}`, FeatureRelease | FeatureFiles, true},
		{`{"type":"features","features":["files"]}`, FeatureFiles, true},
		{`{"type":"features","features":[]}`, 0, true},
		// A newer peer's features are dropped, its known ones kept.
		{`{"type":"features","features":["teleport","files","x-2"]}`, FeatureFiles, true},
		{`{"type":"features"}`, 0, false},
		{`{"type":"features","features":null}`, 0, false},
		{`{"type":"features","features":"files"}`, 0, false},
		{`{"type":"features","features":[1]}`, 0, false},
		{`{"type":"features","features":[null]}`, 0, false},
		{`{"type":"features","features":["Files"]}`, 0, false},
		{`{"type":"features","features":["a b"]}`, 0, false},
		{`{"type":"features","features":["-x"]}`, 0, false},
		{`{"type":"features","features":["x-"]}`, 0, false},
		{`{"type":"features","features":[""]}`, 0, false},
		{`{"type":"features","features":["` + strings.Repeat("a", 33) + `"]}`, 0, false},
		{`{"type":"features","features":["files","files"]}`, 0, false},
		{`{"type":"features","features":[` + strings.Join(many, ",") + `]}`, 0, false},
		{`{"type":"features","features":[],"right":"control"}`, 0, false},
		{`{"type":"features","features":[],"grant":"all"}`, 0, false},
	}
	for _, tt := range tests {
		m, err := DecodeMessage([]byte(tt.in))
		if !tt.ok {
			if err == nil {
				t.Errorf("%.80s decoded to %#v", tt.in, m)
			} else if errors.Is(err, ErrUnknownMessage) {
				t.Errorf("%.80s: a malformed features message is not an unknown one: %v", tt.in, err)
			}
			continue
		}
		if err != nil || m != (Announce{Features: tt.want}) {
			t.Errorf("%.80s: %#v, %v; want features %s", tt.in, m, err, tt.want)
		}
	}
}

func TestEncodeFeatures(t *testing.T) {
	for _, tt := range []struct {
		m    Announce
		want string
	}{
		{Announce{Features: OurFeatures}, `{"type":"features","features":["release","files"]}`},
		{Announce{}, `{"type":"features","features":[]}`},
	} {
		b, err := EncodeMessage(tt.m)
		if err != nil || string(b) != tt.want {
			t.Errorf("%#v: %s, %v; want %s", tt.m, b, err, tt.want)
		}
	}
	if b, err := EncodeMessage(Announce{Features: 1 << 20}); err == nil {
		t.Errorf("a feature this version does not know encoded as %s", b)
	}
}

// TestDecodeUnknownType: a well-formed object of a type this version does
// not know is ErrUnknownMessage, whatever its members; anything malformed
// stays a plain error, which ends the session.
func TestDecodeUnknownType(t *testing.T) {
	tests := []struct {
		in      string
		unknown bool
	}{
		{`{"type":"hello"}`, true},
		{`{"type":"teleport","where":"mars","n":[1,{"a":null}]}`, true},
		{`{"right":"control","type":"grant","allow":true}`, true},
		{`{"type":"Request","right":"control"}`, true}, // types are exact
		{`{"TYPE":"chat","text":"hi"}`, false},
		{`{"type":5}`, false},
		{`{"type":null}`, false},
		{`{"type":"a","type":"b"}`, false},
		{`{"type":"hello"} {}`, false},
		{`{"type":"hello"`, false},
		{`{"text":"hi"}`, false},
		{`[{"type":"hello"}]`, false},
		{`"hello"`, false},
		{`{"type":"chat","text":"hi","extra":1}`, false}, // known types stay strict
	}
	for _, tt := range tests {
		_, err := DecodeMessage([]byte(tt.in))
		if err == nil {
			t.Errorf("%s decoded", tt.in)
			continue
		}
		if got := errors.Is(err, ErrUnknownMessage); got != tt.unknown {
			t.Errorf("%s: unknown %v (%v), want %v", tt.in, got, err, tt.unknown)
		}
	}
}

// fakePeer is the other end of a session as an older or newer program
// would run it: a bare mux, whose control messages the test writes and
// reads itself.
func fakePeer(t *testing.T, c net.Conn, opener bool) *Mux {
	t.Helper()
	m := NewMux(c, MuxOptions{Opener: opener})
	t.Cleanup(func() { m.Close() })
	return m
}

// receive reads control messages on m until one that is not an Announce.
func receive(t *testing.T, m *Mux) Message {
	t.Helper()
	type res struct {
		m   Message
		err error
	}
	got := make(chan res, 1)
	go func() {
		for {
			msg, err := ReceiveMessage(m.Channel(ChannelControl))
			if _, ok := msg.(Announce); ok && err == nil {
				continue
			}
			got <- res{msg, err}
			return
		}
	}()
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("receive: %v", r.err)
		}
		return r.m
	case <-time.After(30 * time.Second):
		t.Fatal("no control message")
	}
	panic("unreachable")
}

func send(t *testing.T, m *Mux, ch byte, raw string) {
	t.Helper()
	if err := m.Channel(ch).WriteMessage([]byte(raw)); err != nil {
		t.Fatalf("send %s: %v", raw, err)
	}
}

// TestExpertWithOlderNovice: a novice that announces nothing is never sent
// release or files messages, and its newer messages are ignored.
func TestExpertWithOlderNovice(t *testing.T) {
	a, b := net.Pipe()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	exp := StartExpertConfig(b, log, ExpertConfig{FilesDir: t.TempDir()})
	t.Cleanup(func() {
		exp.Leave("test over")
		for range exp.Events() {
		}
	})
	nov := fakePeer(t, a, false)
	first, err := ReceiveMessage(nov.Channel(ChannelControl))
	if err != nil || first != (Announce{Features: OurFeatures}) {
		t.Fatalf("the expert's first control message: %#v, %v; want its features", first, err)
	}
	// An older novice: no features, straight to controlling with files.
	send(t, nov, ChannelControl, `{"type":"state","state":"controlling","rights":"view+control+files"}`)
	waitExpertState(t, exp, Controlling)
	if f := exp.PeerFeatures(); f != 0 {
		t.Errorf("PeerFeatures %s, want none", f)
	}
	ctx := context.Background()
	if err := exp.GiveBackControl(ctx); !errors.Is(err, ErrNotSupported) {
		t.Errorf("GiveBackControl: %v, want ErrNotSupported", err)
	}
	if err := exp.RequestFiles(ctx); !errors.Is(err, ErrNotSupported) {
		t.Errorf("RequestFiles: %v, want ErrNotSupported", err)
	}
	p := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(p, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := exp.SendFile(ctx, p); !errors.Is(err, ErrNotSupported) {
		t.Errorf("SendFile: %v, want ErrNotSupported", err)
	}
	// A newer novice's messages of unknown types change nothing.
	send(t, nov, ChannelControl, `{"type":"grant","rights":"view+control+clipboard+files","everything":true}`)
	send(t, nov, ChannelChat, `{"type":"sticker","id":7}`)
	send(t, nov, ChannelChat, `{"type":"chat","text":"still here"}`)
	waitChat(t, exp, "still here")
	if st, _ := exp.State(); st != Controlling || exp.Rights() != RightView|RightControl|RightFiles {
		t.Errorf("state %s, rights %s after unknown messages", st, exp.Rights())
	}
	// The next thing on the wire is what the first version has.
	if err := exp.RequestClipboard(ctx); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, nov); m != (Request{Right: RightClipboard}) {
		t.Errorf("the expert sent %#v, want only the clipboard request", m)
	}
	// Nothing went on the files channel.
	files := nov.Channel(ChannelFiles)
	files.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := files.Read(make([]byte, 1)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the files channel carried %d bytes (%v)", n, err)
	}
}

// TestNoviceWithOlderExpert: an expert that announces nothing gets no
// files right and no file; a newer expert's unknown messages are ignored
// and grant nothing.
func TestNoviceWithOlderExpert(t *testing.T) {
	a, b := net.Pipe()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	exp := fakePeer(t, b, true)
	nov, err := StartNovice(context.Background(), a, "Dana", NoviceConfig{Policy: PolicyView, Logger: log,
		AnswerTimeout: time.Minute, FilesDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nov.End("test over")
		for range nov.Events() {
		}
		<-nov.Done()
	})
	first, err := ReceiveMessage(exp.Channel(ChannelControl))
	if err != nil || first != (Announce{Features: OurFeatures}) {
		t.Fatalf("the novice's first control message: %#v, %v; want its features", first, err)
	}
	// A newer expert's messages of unknown types: nothing changes, nothing
	// is asked.
	send(t, exp, ChannelControl, `{"type":"grant","right":"control","allow":true}`)
	send(t, exp, ChannelControl, `{"type":"take-over"}`)
	send(t, exp, ChannelChat, `{"type":"sticker","id":7}`)
	send(t, exp, ChannelChat, `{"type":"chat","text":"hello"}`)
	select {
	case text := <-nov.Chats():
		if text != "hello" {
			t.Fatalf("chat %q", text)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the chat after unknown messages never arrived")
	}
	if s, r := nov.State(), nov.consent.Rights(); s != Viewing || r != RightView {
		t.Fatalf("state %s, rights %s after unknown messages; want viewing", s, r)
	}
	select {
	case q := <-nov.Questions():
		t.Fatalf("an unknown message asked %v", q.Right)
	default:
	}
	if f := nov.PeerFeatures(); f != 0 {
		t.Errorf("PeerFeatures %s, want none", f)
	}
	// Files cannot be allowed to this expert, nor sent to it.
	if err := nov.SetFiles(true); !errors.Is(err, ErrNotSupported) {
		t.Errorf("SetFiles(true): %v, want ErrNotSupported", err)
	}
	p := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(p, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := nov.SendFile(p); !errors.Is(err, ErrNotSupported) {
		t.Errorf("SendFile: %v, want ErrNotSupported", err)
	}
	if nov.Files() {
		t.Error("files allowed")
	}
	// A late features message changes nothing either.
	send(t, exp, ChannelControl, `{"type":"features","features":["release","files"]}`)
	send(t, exp, ChannelControl, `{"type":"request","right":"control"}`)
	if q := nextQuestion(t, nov); q.Right != RightControl {
		t.Fatalf("asked %v, want control", q.Right)
	}
	if f := nov.PeerFeatures(); f != 0 {
		t.Errorf("PeerFeatures %s after a late announcement, want none", f)
	}
	files := exp.Channel(ChannelFiles)
	files.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := files.Read(make([]byte, 1)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the files channel carried %d bytes (%v)", n, err)
	}
}

// TestFeaturesBothNew: two programs of this version announce and use
// everything.
func TestFeaturesBothNew(t *testing.T) {
	nov, exp, _ := askPair(t, PolicyView, time.Minute)
	waitExpertState(t, exp, Viewing)
	if f := exp.PeerFeatures(); f != OurFeatures {
		t.Errorf("the expert sees features %s, want %s", f, OurFeatures)
	}
	if err := exp.RequestFiles(context.Background()); err != nil {
		t.Fatal(err)
	}
	if q := nextQuestion(t, nov); q.Right != RightFiles {
		t.Fatalf("asked %v", q.Right)
	}
	if f := nov.PeerFeatures(); f != OurFeatures {
		t.Errorf("the novice sees features %s, want %s", f, OurFeatures)
	}
}

func waitChat(t *testing.T, exp *Expert, text string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-exp.Events():
			if !ok {
				t.Fatalf("expert's events closed before the chat %q", text)
			}
			if ev.IsChat && ev.Chat == text {
				return
			}
		case <-timeout:
			t.Fatalf("no chat %q", text)
		}
	}
}
