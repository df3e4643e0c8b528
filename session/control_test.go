package session

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestMessageRoundTrip(t *testing.T) {
	msgs := []Message{
		Request{Right: RightControl},
		Request{Right: RightClipboard},
		Release{Right: RightControl},
		Decision{Right: RightControl, Allow: true},
		Decision{Right: RightView, Allow: false},
		StateUpdate{State: Controlling, Rights: RightView | RightControl | RightClipboard, Reason: "novice allowed control"},
		StateUpdate{State: Waiting, Rights: 0},
		Chat{Text: "Click Start, then Settings.\n\tThanks! ✓"},
		Chat{Text: strings.Repeat("é", MaxChat/2)},
		End{Reason: "novice stopped"},
	}
	for _, m := range msgs {
		b, err := EncodeMessage(m)
		if err != nil {
			t.Fatalf("%#v: %v", m, err)
		}
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got != m {
			t.Fatalf("%s decoded to %#v, want %#v", b, got, m)
		}
	}
}

func TestMessageWireFormat(t *testing.T) {
	tests := []struct {
		m    Message
		want string
	}{
		{Request{Right: RightControl}, `{"type":"request","right":"control"}`},
		{Decision{Right: RightControl}, `{"type":"decision","right":"control","allow":false}`},
		{Release{Right: RightControl}, `{"type":"release","right":"control"}`},
		{StateUpdate{State: Viewing, Rights: RightView}, `{"type":"state","state":"viewing","rights":"view"}`},
		{StateUpdate{State: Ended, Reason: "bye"}, `{"type":"state","state":"ended","rights":"none","reason":"bye"}`},
		{Chat{Text: "hi"}, `{"type":"chat","text":"hi"}`},
		{End{Reason: "expired"}, `{"type":"end","reason":"expired"}`},
	}
	for _, tt := range tests {
		b, err := EncodeMessage(tt.m)
		if err != nil || string(b) != tt.want {
			t.Errorf("%#v: %s, %v; want %s", tt.m, b, err, tt.want)
		}
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	for _, m := range []Message{
		nil,
		Request{},
		Request{Right: RightView | RightControl},
		Decision{Right: 16},
		Release{Right: RightView},
		Release{},
		StateUpdate{State: Viewing, Rights: RightView | RightControl},
		StateUpdate{State: 9},
		StateUpdate{State: Viewing, Rights: RightView, Reason: "two\nlines"},
		Chat{},
		Chat{Text: strings.Repeat("a", MaxChat+1)},
		Chat{Text: "\x1b[2Jgotcha"},
		Chat{Text: "\u202etxt.exe"},
		End{},
		End{Reason: strings.Repeat("a", MaxReason+1)},
	} {
		if b, err := EncodeMessage(m); err == nil {
			t.Errorf("%#v encoded as %s", m, b)
		}
	}
}

func TestDecodeStrict(t *testing.T) {
	bad := []string{
		``,
		`null`,
		`[]`,
		`"chat"`,
		`{}`,
		`{"type":"hello"}`,
		`{"type":"chat"}`,
		`{"type":"chat","text":null}`,
		`{"type":"chat","text":""}`,
		`{"type":"chat","text":"hi","extra":1}`,
		`{"type":"chat","text":"hi","right":"view"}`, // known member, wrong type
		`{"type":"chat","Text":"hi"}`,                // case matters
		`{"TYPE":"chat","text":"hi"}`,
		`{"type":"chat","text":"hi","text":"ho"}`, // repeated
		`{"type":"chat","text":"hi"} {}`,          // trailing data
		`{"type":"chat","text":"hi"}x`,
		`{"type":"chat","text":5}`,
		`{"type":"chat","text":"\u001b[31m"}`,
		`{"type":"request","right":"everything"}`,
		`{"type":"request","right":"view+control"}`,
		`{"type":"request","right":"none"}`,
		`{"type":"decision","right":"control"}`,
		`{"type":"decision","right":"control","allow":"yes"}`,
		`{"type":"state","state":"viewing","rights":"view+control"}`,
		`{"type":"state","state":"Viewing","rights":"view"}`,
		`{"type":"state","state":"viewing","rights":"view+view"}`,
		`{"type":"state","state":"viewing"}`,
		`{"type":"end"}`,
		`{"type":"end","reason":""}`,
		`{"type":"end","reason":"a\nb"}`,
		`{"type":"chat","text":"` + strings.Repeat("a", MaxMessage) + `"}`,
	}
	for _, s := range bad {
		if m, err := DecodeMessage([]byte(s)); err == nil {
			t.Errorf("%.80s decoded to %#v", s, m)
		}
	}
}

func TestRightsText(t *testing.T) {
	for r := Rights(0); r <= RightView|RightControl|RightClipboard; r++ {
		b, err := r.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var got Rights
		if err := got.UnmarshalText(b); err != nil || got != r {
			t.Fatalf("%s: %v %v", b, got, err)
		}
	}
	var r Rights
	if err := r.UnmarshalText([]byte("control+view")); err != nil || r != RightView|RightControl {
		t.Fatalf("order: %v %v", r, err)
	}
	for _, s := range []string{"", "+", "view+", "none+view", "View"} {
		if err := r.UnmarshalText([]byte(s)); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if _, err := Rights(0x80).MarshalText(); err == nil {
		t.Error("unknown right marshalled")
	}
}

func TestStateUpdateOfEvents(t *testing.T) {
	rec := &recorder{}
	c := NewConsent(Config{Policy: PolicyControl, Clipboard: true, Audit: rec.audit})
	c.ExpertAuthenticated("Ada")
	c.RequestControl()
	c.TakeBackControl()
	c.SetClipboard(false)
	c.End("novice stopped")
	for _, ev := range rec.events() {
		if _, err := EncodeMessage(StateUpdateOf(ev)); err != nil {
			t.Fatalf("event %+v: %v", ev, err)
		}
	}
}

func TestSendReceiveMessage(t *testing.T) {
	a, b := pipePair(t, MuxOptions{})
	go SendMessage(a.Channel(ChannelControl), Request{Right: RightControl})
	m, err := ReceiveMessage(b.Channel(ChannelControl))
	if err != nil || m != (Request{Right: RightControl}) {
		t.Fatalf("%#v, %v", m, err)
	}
	go a.Channel(ChannelControl).WriteMessage([]byte(`{"type":"chat","text":"hi","x":1}`))
	if _, err := ReceiveMessage(b.Channel(ChannelControl)); err == nil {
		t.Fatal("bad message received")
	}
}

func FuzzDecodeControl(f *testing.F) {
	for _, s := range []string{
		`{"type":"request","right":"control"}`,
		`{"type":"decision","right":"control","allow":true}`,
		`{"type":"release","right":"control"}`,
		`{"type":"release","right":"view"}`,
		`{"type":"state","state":"controlling","rights":"view+control+clipboard","reason":"ok"}`,
		`{"type":"chat","text":"hi\n"}`,
		`{"type":"end","reason":"bye"}`,
		`{"type":"chat","text":"hi","text":"x"}`,
		`{"type":"chat","text":"\ud800"}`,
		`{"type":"features","features":["release","files","later-1"]}`,
		`{"type":"features","features":[]}`,
		`{"type":"teleport","to":{"x":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			if errors.Is(err, ErrUnknownMessage) {
				// Only a JSON object of a type this version does not know.
				var obj map[string]any
				if json.Unmarshal(b, &obj) != nil {
					t.Fatalf("%q: unknown message that is not a JSON object", b)
				}
				if typ, ok := obj["type"].(string); !ok || messageKeys[typ].required != nil {
					t.Fatalf("%q: unknown message of type %v", b, obj["type"])
				}
			}
			return
		}
		// Whatever decodes must be valid, and must survive a round trip.
		enc, err := EncodeMessage(m)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", m, err)
		}
		m2, err := DecodeMessage(enc)
		if err != nil || m2 != m {
			t.Fatalf("round trip of %s: %#v, %v", enc, m2, err)
		}
	})
}
