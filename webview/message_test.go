package webview

import (
	"errors"
	"strings"
	"testing"
)

func TestParseMessage(t *testing.T) {
	long := strings.Repeat("é", maxChatBytes/2+1)
	tests := []struct {
		name string
		in   string
		want message
		ok   bool
	}{
		{"request control", `{"type":"request_control"}`, message{Type: msgRequestControl}, true},
		{"request clipboard", `{"type":"request_clipboard"}`, message{Type: msgRequestClipboard}, true},
		{"request clipboard with text", `{"type":"request_clipboard","text":"x"}`, message{}, false},
		{"give back control", `{"type":"give_back_control"}`, message{Type: msgGiveBack}, true},
		{"give back control with text", `{"type":"give_back_control","text":""}`, message{}, false},
		{"leave", `{"type":"leave"}`, message{Type: msgLeave}, true},
		{"leave with text", `{"type":"leave","text":"bye"}`, message{}, false},
		{"chat", `{"type":"chat","text":"hello"}`, message{Type: msgChat, Text: "hello"}, true},
		{"chat trimmed", `{"type":"chat","text":"  hi there \t"}`, message{Type: msgChat, Text: "hi there"}, true},
		{"chat unicode", `{"type":"chat","text":"gr\u00fc\u00df dich 👋"}`, message{Type: msgChat, Text: "grüß dich 👋"}, true},
		{"chat tab inside", `{"type":"chat","text":"a\tb"}`, message{Type: msgChat, Text: "a\tb"}, true},
		{"whitespace around object", " {\"type\":\"request_control\"}\n", message{Type: msgRequestControl}, true},
		{"empty", ``, message{}, false},
		{"not json", `hello`, message{}, false},
		{"array", `[{"type":"chat","text":"x"}]`, message{}, false},
		{"null", `null`, message{}, false},
		{"two objects", `{"type":"request_control"}{"type":"request_control"}`, message{}, false},
		{"trailing garbage", `{"type":"request_control"} x`, message{}, false},
		{"unknown type", `{"type":"grant_control"}`, message{}, false},
		{"no type", `{"text":"x"}`, message{}, false},
		{"unknown field", `{"type":"chat","text":"x","from":"novice"}`, message{}, false},
		{"request control with text", `{"type":"request_control","text":""}`, message{}, false},
		{"chat without text", `{"type":"chat"}`, message{}, false},
		{"chat null text", `{"type":"chat","text":null}`, message{}, false},
		{"chat empty", `{"type":"chat","text":""}`, message{}, false},
		{"chat blank", `{"type":"chat","text":"   "}`, message{}, false},
		{"chat number", `{"type":"chat","text":5}`, message{}, false},
		{"chat newline", `{"type":"chat","text":"a\nb"}`, message{}, false},
		{"chat NUL", `{"type":"chat","text":"a\u0000b"}`, message{}, false},
		{"chat escape sequence", `{"type":"chat","text":"a\u001b[2Jb"}`, message{}, false},
		{"chat DEL", `{"type":"chat","text":"a\u007fb"}`, message{}, false},
		{"chat C1", `{"type":"chat","text":"a\u0085b"}`, message{}, false},
		{"chat line separator", `{"type":"chat","text":"a\u2028b"}`, message{}, false},
		{"chat lone surrogate", `{"type":"chat","text":"a\ud800b"}`, message{}, false},
		{"chat too long", `{"type":"chat","text":"` + long + `"}`, message{}, false},
		{"invalid UTF-8", "{\"type\":\"chat\",\"text\":\"a\xffb\"}", message{}, false},
		{"type case", `{"type":"Chat","text":"x"}`, message{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMessage([]byte(tt.in))
			if tt.ok {
				if err != nil || got != tt.want {
					t.Fatalf("parseMessage(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("parseMessage(%q) = %+v; want an error", tt.in, got)
			}
			if !errors.Is(err, errBadMessage) {
				t.Fatalf("parseMessage(%q) error %v is not errBadMessage", tt.in, err)
			}
		})
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"request_control"}`,
		`{"type":"give_back_control"}`,
		`{"type":"leave"}`,
		`{"type":"chat","text":"hello"}`,
		`{"type":"chat","text":"\u00e9\ud83d\udc4b"}`,
		`{"type":"chat","text":"a\nb"}`,
		`[]`, `{}`, `null`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMessage(data)
		if err != nil {
			return
		}
		switch m.Type {
		case msgRequestControl, msgRequestClipboard, msgGiveBack, msgLeave:
			if m.Text != "" {
				t.Fatalf("%s with text %q", m.Type, m.Text)
			}
		case msgChat:
			if _, err := checkChat(m.Text); err != nil {
				t.Fatalf("accepted chat line fails its own check: %v", err)
			}
			if strings.TrimSpace(m.Text) != m.Text {
				t.Fatalf("chat line %q is not trimmed", m.Text)
			}
		default:
			t.Fatalf("unknown type %q accepted", m.Type)
		}
	})
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "h"},
		{"héllo", 3, "hé"},
		{"a\xffb", 10, "a\uFFFDb"},
		{"👋👋", 5, "👋"},
		{"", 0, ""},
	}
	for _, tt := range tests {
		if got := truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
