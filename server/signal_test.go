package server

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseSignal(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want Signal
		err  string // substring of the error message; "" for success
	}{
		{in: `{"type":"register","id":"7-crayon","expires":"2030-01-02T03:04:05Z"}`, want: Signal{Type: TypeRegister, ID: "7-crayon", Expires: exp}},
		{in: `{"type":"register","id":"7-crayon","expires":"2030-01-02T03:04:05Z","owner":"AAAAAAAAAAAAAAAAAAAA_-"}`,
			want: Signal{Type: TypeRegister, ID: "7-crayon", Expires: exp, Owner: "AAAAAAAAAAAAAAAAAAAA_-"}},
		{in: ` {"id":"abc","type":"join"} `, want: Signal{Type: TypeJoin, ID: "abc"}},
		{in: `{"type":"relay","data":{"a":[1,2]}}`, want: Signal{Type: TypeRelay, Data: []byte(`{"a":[1,2]}`)}},
		{in: `{"type":"relay","data":"AAEC"}`, want: Signal{Type: TypeRelay, Data: []byte(`"AAEC"`)}},
		{in: `{"type":"bye"}`, want: Signal{Type: TypeBye}},
		{in: `{"type":"bye","reason":"auth-failed"}`, want: Signal{Type: TypeBye, Reason: ReasonAuthFailed}},
		{in: ``, err: "not a JSON object"},
		{in: `null`, err: "not a JSON object"},
		{in: `[]`, err: "not a JSON object"},
		{in: `{"type":"join","id":"a"} {}`, err: "trailing data"},
		{in: `{"type":"join","id":"a"}x`, err: "trailing data"},
		{in: `{"id":"a"}`, err: `missing "type"`},
		{in: `{"type":7}`, err: `"type" must be a string`},
		{in: `{"type":"JOIN","id":"a"}`, err: "unknown message type"},
		{in: `{"TYPE":"join","id":"a"}`, err: `missing "type"`},
		{in: `{"type":"join","ID":"a"}`, err: `unknown member "ID"`},
		{in: `{"type":"join","id":"a","id":"b"}`, err: "more than once"},
		{in: `{"type":"join","id":"a","expires":"2030-01-02T03:04:05Z"}`, err: `unknown member "expires"`},
		{in: `{"type":"join"}`, err: `needs "id"`},
		{in: `{"type":"join","id":""}`, err: "1 to 64"},
		{in: `{"type":"join","id":"` + strings.Repeat("a", 65) + `"}`, err: "1 to 64"},
		{in: `{"type":"join","id":"Abc"}`, err: "a-z"},
		{in: `{"type":"join","id":"a b"}`, err: "a-z"},
		{in: `{"type":"join","id":["a"]}`, err: `"id" must be a string`},
		{in: `{"type":"register","id":"a"}`, err: `needs "expires"`},
		{in: `{"type":"register","id":"a","expires":"tomorrow"}`, err: "RFC 3339"},
		{in: `{"type":"register","id":"a","expires":1700000000}`, err: `"expires" must be a string`},
		{in: `{"type":"register","id":"a","expires":"2030-01-02T03:04:05Z","owner":"short"}`, err: `"owner" must be 22 to 64`},
		{in: `{"type":"register","id":"a","expires":"2030-01-02T03:04:05Z","owner":"AAAAAAAAAAAAAAAAAAAAA+"}`, err: `"owner" must be 22 to 64`},
		{in: `{"type":"register","id":"a","expires":"2030-01-02T03:04:05Z","owner":7}`, err: `"owner" must be a string`},
		{in: `{"type":"join","id":"a","owner":"AAAAAAAAAAAAAAAAAAAAAA"}`, err: `unknown member "owner"`},
		{in: `{"type":"relay"}`, err: `needs "data"`},
		{in: `{"type":"relay","data":null}`, err: "must not be null"},
		{in: `{"type":"relay","data":1,"to":"x"}`, err: `unknown member "to"`},
		{in: `{"type":"bye","reason":5}`, err: `"reason" must be a string`},
		{in: `{"type":"bye","reason":"` + strings.Repeat("x", 257) + `"}`, err: "longer than 256"},
		{in: "{\"type\":\"relay\",\"data\":\"\xff\"}", err: "UTF-8"},
	} {
		got, err := ParseSignal([]byte(tc.in))
		if tc.err != "" {
			var se *SignalError
			if err == nil || !errors.As(err, &se) || se.Code != CodeMalformed || !strings.Contains(se.Message, tc.err) {
				t.Errorf("ParseSignal(%.60q) = %+v, %v; want a malformed error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSignal(%q): %v", tc.in, err)
			continue
		}
		if got.Type != tc.want.Type || got.ID != tc.want.ID || !got.Expires.Equal(tc.want.Expires) ||
			string(got.Data) != string(tc.want.Data) || got.Reason != tc.want.Reason {
			t.Errorf("ParseSignal(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{
		`{"type":"register","id":"7-crayon","expires":"2030-01-02T03:04:05Z"}`,
		`{"type":"register","id":"7-crayon","expires":"2030-01-02T03:04:05Z","owner":"AAAAAAAAAAAAAAAAAAAAAA"}`,
		`{"type":"join","id":"abc"}`,
		`{"type":"relay","data":{"sdp":"v=0\r\n","n":[1,2,3]}}`,
		`{"type":"relay","data":"AAEC"}`,
		`{"type":"bye","reason":"auth-failed"}`,
		`{"type":"join","id":"a","id":"b"}`,
		`{}`, `[`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSignal(b)
		if err != nil {
			var se *SignalError
			if !errors.As(err, &se) || se.Code == "" || se.Message == "" {
				t.Fatalf("error %v is not a complete *SignalError", err)
			}
			return
		}
		switch s.Type {
		case TypeRegister, TypeJoin:
			if ValidateID(s.ID) != nil {
				t.Fatalf("accepted bad id %q", s.ID)
			}
		case TypeRelay:
			// What the server forwards must itself parse as a relay
			// message carrying the same bytes.
			back, err := ParseSignal(relayMessage(s.Data))
			if err != nil || string(back.Data) != string(s.Data) {
				t.Fatalf("relayed %s does not parse back: %v", relayMessage(s.Data), err)
			}
		case TypeBye:
			if len(s.Reason) > MaxReasonLen {
				t.Fatalf("accepted a %d-byte reason", len(s.Reason))
			}
		default:
			t.Fatalf("accepted type %q", s.Type)
		}
	})
}
