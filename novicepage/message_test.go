package novicepage

import (
	"errors"
	"strings"
	"testing"

	"github.com/assist-project/assist/messenger"
)

func TestParseMessage(t *testing.T) {
	long := strings.Repeat("é", MaxChat/2+1)
	tests := []struct {
		name string
		in   string
		want message
		ok   bool
	}{
		{"allow view", `{"type":"answer","question":1,"allow":true}`, message{Kind: ActAnswer, Question: 1, Allow: true}, true},
		{"deny", `{"type":"answer","allow":false,"question":42}`, message{Kind: ActAnswer, Question: 42}, true},
		{"take back", `{"type":"take_back"}`, message{Kind: ActTakeBack}, true},
		{"end", `{"type":"end"}`, message{Kind: ActEnd}, true},
		{"withdraw", `{"type":"withdraw"}`, message{Kind: ActWithdraw}, true},
		{"chat", `{"type":"chat","text":"hello"}`, message{Kind: ActChat, Text: "hello"}, true},
		{"chat trimmed", `{"type":"chat","text":"  hi there \t"}`, message{Kind: ActChat, Text: "hi there"}, true},
		{"chat unicode", `{"type":"chat","text":"gr\u00fc\u00df dich 👋"}`, message{Kind: ActChat, Text: "grüß dich 👋"}, true},
		{"chat tab inside", `{"type":"chat","text":"a\tb"}`, message{Kind: ActChat, Text: "a\tb"}, true},
		{"chat at the limit", `{"type":"chat","text":"` + strings.Repeat("x", MaxChat) + `"}`, message{Kind: ActChat, Text: strings.Repeat("x", MaxChat)}, true},
		{"share clipboard", `{"type":"clipboard","allow":true}`, message{Kind: ActClipboard, Allow: true}, true},
		{"stop sharing clipboard", `{"type":"clipboard","allow":false}`, message{Kind: ActClipboard}, true},
		{"allow files", `{"type":"files","allow":true}`, message{Kind: ActFiles, Allow: true}, true},
		{"files without allow", `{"type":"files"}`, message{}, false},
		{"clipboard without allow", `{"type":"clipboard"}`, message{}, false},
		{"clipboard with question", `{"type":"clipboard","allow":true,"question":1}`, message{}, false},
		{"clipboard allow as string", `{"type":"clipboard","allow":"yes"}`, message{}, false},
		{"keep sharing", `{"type":"keep_sharing"}`, message{Kind: ActKeepSharing}, true},
		{"keep sharing with allow", `{"type":"keep_sharing","allow":true}`, message{}, false},
		{"send file over the socket", `{"type":"send_file"}`, message{}, false},
		{"send file with a path", `{"type":"send_file","path":"/etc/passwd"}`, message{}, false},
		{"get help", `{"type":"get_help"}`, message{Kind: ActGetHelp}, true},
		{"email to the mail program", `{"type":"email","to":""}`, message{Kind: ActEmail}, true},
		{"email to an address", `{"type":"email","to":" max@example.com "}`, message{Kind: ActEmail, To: "max@example.com"}, true},
		{"email without to", `{"type":"email"}`, message{}, false},
		{"email to two lines", `{"type":"email","to":"a@b.c\nBcc: x@y.z"}`, message{}, false},
		{"email to too long", `{"type":"email","to":"` + strings.Repeat("a", 250) + `@b.cd"}`, message{}, false},
		{"ask", `{"type":"ask","user":"eddie.b-2"}`, message{Kind: ActAsk, User: "eddie.b-2"}, true},
		{"ask without user", `{"type":"ask"}`, message{}, false},
		{"ask empty user", `{"type":"ask","user":""}`, message{}, false},
		{"ask user with capitals", `{"type":"ask","user":"Eddie"}`, message{}, false},
		{"ask user too long", `{"type":"ask","user":"` + strings.Repeat("a", 33) + `"}`, message{}, false},
		{"ask user with a slash", `{"type":"ask","user":"../eddie"}`, message{}, false},
		{"ask user number", `{"type":"ask","user":7}`, message{}, false},
		{"ask with text", `{"type":"ask","user":"eddie","text":"x"}`, message{}, false},
		{"get help with user", `{"type":"get_help","user":"eddie"}`, message{}, false},
		{"whitespace around object", " {\"type\":\"end\"}\n", message{Kind: ActEnd}, true},

		{"empty", ``, message{}, false},
		{"not json", `hello`, message{}, false},
		{"array", `[{"type":"end"}]`, message{}, false},
		{"null", `null`, message{}, false},
		{"string", `"end"`, message{}, false},
		{"two objects", `{"type":"end"}{"type":"end"}`, message{}, false},
		{"trailing garbage", `{"type":"end"} x`, message{}, false},
		{"unterminated", `{"type":"end"`, message{}, false},
		{"unknown type", `{"type":"grant_control"}`, message{}, false},
		{"no type", `{"text":"x"}`, message{}, false},
		{"type null", `{"type":null}`, message{}, false},
		{"type number", `{"type":1}`, message{}, false},
		{"type case", `{"type":"End"}`, message{}, false},
		{"key case", `{"Type":"end"}`, message{}, false},
		{"repeated type", `{"type":"chat","type":"end"}`, message{}, false},
		{"repeated text", `{"type":"chat","text":"a","text":"b"}`, message{}, false},
		{"unknown field", `{"type":"end","reason":"x"}`, message{}, false},
		{"too many fields", `{"type":"answer","question":1,"allow":true,"a":1,"b":2}`, message{}, false},
		{"end with text", `{"type":"end","text":""}`, message{}, false},
		{"answer without question", `{"type":"answer","allow":true}`, message{}, false},
		{"answer without allow", `{"type":"answer","question":1}`, message{}, false},
		{"answer question 0", `{"type":"answer","question":0,"allow":true}`, message{}, false},
		{"answer negative question", `{"type":"answer","question":-1,"allow":true}`, message{}, false},
		{"answer fractional question", `{"type":"answer","question":1.5,"allow":true}`, message{}, false},
		{"answer question as string", `{"type":"answer","question":"1","allow":true}`, message{}, false},
		{"answer huge question", `{"type":"answer","question":18446744073709551616,"allow":true}`, message{}, false},
		{"answer allow as string", `{"type":"answer","question":1,"allow":"yes"}`, message{}, false},
		{"answer allow as number", `{"type":"answer","question":1,"allow":1}`, message{}, false},
		{"answer allow null", `{"type":"answer","question":1,"allow":null}`, message{}, false},
		{"answer with text", `{"type":"answer","question":1,"allow":true,"text":"x"}`, message{}, false},
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
		{"chat bidi override", `{"type":"chat","text":"a\u202eb"}`, message{}, false},
		{"chat bidi isolate", `{"type":"chat","text":"a\u2066b"}`, message{}, false},
		{"chat lone surrogate", `{"type":"chat","text":"a\ud800b"}`, message{}, false},
		{"chat too long", `{"type":"chat","text":"` + long + `"}`, message{}, false},
		{"invalid UTF-8", "{\"type\":\"chat\",\"text\":\"a\xffb\"}", message{}, false},
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
				t.Errorf("error %v does not wrap errBadMessage", err)
			}
		})
	}
}

// FuzzParseMessage checks that no input panics, and that what is accepted
// is one of the known actions with its fields in bounds.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"answer","question":1,"allow":true}`,
		`{"type":"take_back"}`, `{"type":"end"}`, `{"type":"withdraw"}`,
		`{"type":"chat","text":"hello"}`, `{"type":"chat","text":"a","text":"b"}`,
		`{"Type":"end"}`, `{"type":"answer","question":1e3,"allow":true}`,
		"{\"type\":\"chat\",\"text\":\"a\xffb\"}", `[`, `{`, `{"type":`,
		`{"type":"clipboard","allow":true}`, `{"type":"get_help"}`, `{"type":"email","to":"a@b.c"}`,
		`{"type":"ask","user":"eddie"}`, `{"type":"ask","user":"Ed die"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMessage(data)
		if err != nil {
			if !errors.Is(err, errBadMessage) {
				t.Fatalf("error %v does not wrap errBadMessage", err)
			}
			return
		}
		switch m.Kind {
		case ActAnswer:
			if m.Question == 0 || m.Text != "" {
				t.Fatalf("accepted %+v", m)
			}
		case ActChat:
			if m.Text == "" || len(m.Text) > MaxChat || strings.ContainsAny(m.Text, "\r\n\x00") || m.Question != 0 || m.Allow {
				t.Fatalf("accepted %+v", m)
			}
			if _, err := checkChat(m.Text); err != nil {
				t.Fatalf("accepted chat %q that checkChat refuses: %v", m.Text, err)
			}
		case ActAsk:
			if !messenger.ValidUser(m.User) || m != (message{Kind: ActAsk, User: m.User}) {
				t.Fatalf("accepted %+v", m)
			}
		case ActClipboard:
			if m != (message{Kind: ActClipboard, Allow: m.Allow}) {
				t.Fatalf("accepted %+v", m)
			}
		case ActEmail:
			if len(m.To) > maxAddress || strings.ContainsAny(m.To, "\r\n") || m != (message{Kind: ActEmail, To: m.To}) {
				t.Fatalf("accepted %+v", m)
			}
		case ActTakeBack, ActEnd, ActWithdraw, ActGetHelp:
			if m != (message{Kind: m.Kind}) {
				t.Fatalf("accepted %+v", m)
			}
		default:
			t.Fatalf("accepted unknown kind %v", m.Kind)
		}
	})
}
