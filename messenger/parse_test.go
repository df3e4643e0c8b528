package messenger

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	key32 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	sig64 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	rid   = "AAAAAAAAAAAAAAAAAAAAAA"
)

var clientSeeds = []string{
	`{"type":"login","key":"` + key32 + `","sig":"` + sig64 + `","user":"alice","display":"Alice L","name":"laptop"}`,
	`{"type":"login","key":"` + key32 + `","sig":"` + sig64 + `","user":"alice","code":"K7M2","ref":"a1"}`,
	`{"type":"contacts","ref":"r1"}`,
	`{"type":"state","state":"busy"}`,
	`{"type":"remove","user":"bob"}`,
	`{"type":"block","user":"bob"}`,
	`{"type":"unblock","user":"bob"}`,
	`{"type":"devices"}`,
	`{"type":"remove-device","device":"abcdefgh2345"}`,
	`{"type":"pair-open","purpose":"contact"}`,
	`{"type":"pair-join","pair":"K7M2","purpose":"device"}`,
	`{"type":"pair-relay","pair":"K7M2","data":{"x":[1,2]}}`,
	`{"type":"pair-done","pair":"K7M2","key":"` + key32 + `","cert":"` + sig64 + `"}`,
	`{"type":"ask","to":"bob","kind":"help","ref":"q"}`,
	`{"type":"answer","request":"` + rid + `","accept":false}`,
	`{"type":"cancel","request":"` + rid + `"}`,
	`{"type":"login","key":"` + key32 + `","sig":"` + sig64 + `","user":"pc-1","display":"Dana","name":"<img src=x>","token":"` + rid + `"}`,
	`{"type":"machines","ref":"m"}`,
	`{"type":"enrol-token","organisation":"acme","uses":5}`,
	`{"type":"audit-upload"}`,
	`{"type":"audit-upload","audit":"{\"seq\":1}\n","ref":"u"}`,
	`{"type":"audit-search","organisation":"acme","since":"2026-01-02T03:04:05Z","text":"pc-1","offset":40}`,
	`{"type":"audit-verify","organisation":"acme"}`,
	`{"type":"recording-upload","recording":"AAEC","more":true,"user":"dana","since":"2026-01-02T03:04:05Z"}`,
	`{"type":"recording-upload","session":"0123456789abcdef0123456789abcdef","offset":3,"recording":"AAEC"}`,
	`{"type":"recording-list","organisation":"acme"}`,
	`{"type":"recording-get","organisation":"acme","session":"0123456789abcdef0123456789abcdef","offset":32768}`,
}

func TestParseClientMessage(t *testing.T) {
	for _, s := range clientSeeds {
		if _, err := ParseClientMessage([]byte(s)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, c := range []struct{ why, msg string }{
		{"not JSON", `{`},
		{"array", `[]`},
		{"null", `null`},
		{"no type", `{"user":"bob"}`},
		{"type not a string", `{"type":1}`},
		{"unknown type", `{"type":"presence","user":"bob","state":"online"}`},
		{"member of another type", `{"type":"contacts","user":"bob"}`},
		{"unknown member", `{"type":"devices","verbose":true}`},
		{"case-folded member", `{"type":"remove","User":"bob"}`},
		{"case-folded type member", `{"TYPE":"devices"}`},
		{"missing required", `{"type":"remove"}`},
		{"null required", `{"type":"remove","user":null}`},
		{"wrong JSON type", `{"type":"answer","request":"` + rid + `","accept":"yes"}`},
		{"trailing data", `{"type":"devices"}{}`},
		{"bad state", `{"type":"state","state":"offline"}`},
		{"bad user", `{"type":"remove","user":"Bob"}`},
		{"user starting with a dot", `{"type":"remove","user":".bob"}`},
		{"long user", `{"type":"remove","user":"` + strings.Repeat("a", 33) + `"}`},
		{"short key", `{"type":"login","key":"AAAA","sig":"` + sig64 + `"}`},
		{"padded base64", `{"type":"login","key":"` + key32 + `=","sig":"` + sig64 + `"}`},
		{"std base64", `{"type":"pair-done","pair":"K7M2","key":"` + strings.Repeat("+", 43) + `"}`},
		{"code without user", `{"type":"login","key":"` + key32 + `","sig":"` + sig64 + `","code":"K7M2"}`},
		{"lower-case pair id", `{"type":"pair-join","pair":"k7m2","purpose":"contact"}`},
		{"pair id with U", `{"type":"pair-join","pair":"K7MU","purpose":"contact"}`},
		{"bad purpose", `{"type":"pair-open","purpose":"friend"}`},
		{"bad kind", `{"type":"ask","to":"bob","kind":"now"}`},
		{"bad request id", `{"type":"cancel","request":"abc"}`},
		{"bad ref", `{"type":"devices","ref":"a b"}`},
		{"control character in display", `{"type":"login","key":"` + key32 + `","sig":"` + sig64 + `","user":"a","display":"A\u0007"}`},
		{"bidi override in display", `{"type":"login","key":"` + key32 + `","sig":"` + sig64 + `","user":"a","display":"A\u202e"}`},
		{"invalid UTF-8", "{\"type\":\"devices\",\"ref\":\"\xff\"}"},
		{"token without user", `{"type":"login","key":"` + key32 + `","sig":"` + sig64 + `","token":"` + rid + `"}`},
		{"short token", `{"type":"login","key":"` + key32 + `","sig":"` + sig64 + `","user":"a","token":"abc"}`},
		{"token and code", `{"type":"login","key":"` + key32 + `","sig":"` + sig64 + `","user":"a","code":"K7M2","token":"` + rid + `"}`},
		{"machines with a member", `{"type":"machines","org":"acme"}`},
		{"token for a bad organisation", `{"type":"enrol-token","organisation":"ACME"}`},
		{"token with too many uses", `{"type":"enrol-token","organisation":"acme","uses":1001}`},
		{"token with negative uses", `{"type":"enrol-token","organisation":"acme","uses":-1}`},
		{"search of a bad organisation", `{"type":"audit-search","organisation":"ACME"}`},
		{"search with a negative offset", `{"type":"audit-search","organisation":"acme","offset":-1}`},
		{"search for control characters", `{"type":"audit-search","organisation":"acme","text":"a\u0007"}`},
		{"search with a bad time", `{"type":"audit-search","organisation":"acme","since":"yesterday"}`},
		{"verify without an organisation", `{"type":"audit-verify"}`},
		{"recording with a bad id", `{"type":"recording-upload","session":"../../etc"}`},
		{"recording get without an id", `{"type":"recording-get","organisation":"acme"}`},
		{"recording list of a bad organisation", `{"type":"recording-list","organisation":"../x"}`},
		{"upload with an organisation", `{"type":"audit-upload","organisation":"acme"}`},
		{"too large", `{"type":"pair-relay","pair":"K7M2","data":"` + strings.Repeat("A", MaxMessageBytes) + `"}`},
	} {
		if _, err := ParseClientMessage([]byte(c.msg)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", c.why, err)
		}
	}
}

func TestParseServerMessage(t *testing.T) {
	ok := []string{
		`{"type":"challenge","nonce":"` + key32 + `"}`,
		`{"type":"welcome","user":"alice","display":"A","device":"abcdefgh2345","created":true,"ref":"r1"}`,
		`{"type":"presence","user":"bob","state":"offline"}`,
		`{"type":"contacts","contacts":[{"user":"bob","display":"B","state":"busy","devices":[{"id":"abcdefgh2345","key":"` + key32 + `","name":"n","cert":{"signer":"` + key32 + `","sig":"` + sig64 + `"}}]}],"blocked":[]}`,
		`{"type":"accepted","request":"` + rid + `","by":"bob","session":"r-x","role":"novice","peer":{"user":"bob","display":"B","device":{"id":"abcdefgh2345","key":"` + key32 + `","name":"n"}}}`,
		`{"type":"presence","user":"bob","state":"online","future":1}`, // unknown members are ignored
		`{"type":"something-new","x":1}`,
		`{"type":"machines","machines":[{"user":"pc-1","name":"<b>","display":"Dana","org":"acme","state":"online"}]}`,
		`{"type":"request","request":"` + rid + `","from":"dana","display":"Dana","kind":"offer","expires":"2026-01-01T00:00:00Z","org":{"name":"acme","display":"ACME IT","policy":{"rights":["view","control"],"record":true,"timeout":60}}}`,
	}
	for _, s := range ok {
		if _, err := ParseServerMessage([]byte(s)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{
		`{"type":"presence","user":"bob"}`,
		`{"type":"presence","user":"bob","state":"sleepy"}`,
		`{"type":"welcome","user":"alice","display":"A","device":"x"}`,
		`{"type":"challenge","nonce":"AAAA"}`,
		`{"type":"presence","User":"bob","user":"bob","state":"online"}`,
		`{"type":"accepted","request":"` + rid + `","by":"bob","session":"r-x","role":"boss","peer":{"user":"bob","display":"B","device":{"id":"x","key":"` + key32 + `","name":"n"}}}`,
		`{"type":"contacts","contacts":[{"user":"bob","display":"B","state":"busy","devices":[{"id":"x","key":"AAAA","name":"n"}]}],"blocked":[]}`,
		`{"type":"machines","machines":[{"user":"PC","name":"n","display":"D","org":"acme","state":"online"}]}`,
		`{"type":"machines"}`,
		`{"type":"request","request":"` + rid + `","from":"dana","display":"Dana","kind":"offer","expires":"2026-01-01T00:00:00Z","org":{"name":"acme","display":"ACME IT","policy":{"rights":["control"],"record":true,"timeout":60}}}`,
		`{"type":"request","request":"` + rid + `","from":"dana","display":"Dana","kind":"offer","expires":"2026-01-01T00:00:00Z","org":{"name":"acme","display":"ACME IT","policy":{"rights":["view","root"],"record":true,"timeout":60}}}`,
		`{"type":"request","request":"` + rid + `","from":"dana","display":"Dana","kind":"offer","expires":"2026-01-01T00:00:00Z","org":{"name":"acme","display":"ACME IT","policy":{"rights":["view"],"record":true,"timeout":0}}}`,
	} {
		if _, err := ParseServerMessage([]byte(s)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", s, err)
		}
	}
}

// FuzzParseClientMessage: no input panics, and what parses survives a
// round trip through Marshal unchanged.
func FuzzParseClientMessage(f *testing.F) {
	for _, s := range clientSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"type":"remove","User":"bob"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseClientMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseClientMessage(out)
		if err != nil {
			t.Fatalf("%s parsed, its re-encoding %s does not: %v", b, out, err)
		}
		m.Data, m2.Data = nil, nil // compacted on re-encoding
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed %+v to %+v", m, m2)
		}
	})
}

func FuzzParseServerMessage(f *testing.F) {
	for _, s := range clientSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"type":"accepted","request":"` + rid + `","by":"bob","session":"r-x","role":"novice","peer":{"user":"bob","display":"B","device":{"id":"abcdefgh2345","key":"` + key32 + `","name":"n"}}}`))
	f.Add([]byte(`{"type":"contacts","contacts":[],"blocked":[]}`))
	f.Add([]byte(`{"type":"machines","machines":[{"user":"pc-1","name":"<b>","display":"D","org":"acme","state":"online"}]}`))
	f.Add([]byte(`{"type":"request","request":"` + rid + `","from":"dana","display":"Dana","kind":"offer","expires":"2026-01-01T00:00:00Z","org":{"name":"acme","display":"ACME IT","policy":{"rights":["view"],"record":true,"timeout":60}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseServerMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if m.Type == TypeAccepted && (m.Peer == nil || len(m.Peer.Device.Key) != 32) {
			t.Fatalf("accepted without a usable peer: %+v", m)
		}
		if m.Org != nil && (m.Org.Policy.Check() != nil || !m.Org.Policy.Allows(RightView)) {
			t.Fatalf("an organisation with a bad policy passed: %+v", m.Org)
		}
	})
}

func TestFingerprint(t *testing.T) {
	var sum [32]byte
	sum[0] = 0xab
	s := FormatFingerprint(sum)
	got, err := ParseFingerprint(strings.ToUpper(s[:7]) + s[7:])
	if err != nil || got != sum {
		t.Errorf("ParseFingerprint(%s) = %x, %v", s, got, err)
	}
	for _, bad := range []string{"", "sha256:", "sha1:" + strings.Repeat("0", 64), "sha256:" + strings.Repeat("g", 64)} {
		if _, err := ParseFingerprint(bad); err == nil {
			t.Errorf("ParseFingerprint(%q) succeeded", bad)
		}
	}
}
