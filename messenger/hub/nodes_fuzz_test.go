package hub

import (
	"encoding/json"
	"testing"

	"github.com/assist-project/assist/messenger"
)

// FuzzParseNodeMsg: a message from another node never panics the hub's
// parser, and one it accepts becomes a client message that encodes (a
// "deliver" is re-encoded for the joiner; nothing of it is passed on
// unchecked).
func FuzzParseNodeMsg(f *testing.F) {
	key := make([]byte, 32)
	for _, m := range []nodeMsg{
		{Op: opJoin, From: "n2", Pair: "ABCD", Conn: "c-1", Purpose: messenger.PurposeContact, User: "bob", Display: "Bob", Key: key},
		{Op: opRelay, From: "n2", Pair: "ABCD", Conn: "c-1", Data: json.RawMessage(`"aGk"`)},
		{Op: opDone, From: "n2", Pair: "ABCD", Conn: "c-1", Key: key},
		{Op: opLeft, From: "n2", Pair: "ABCD", Conn: "c-1", Reason: "whatever"},
		{Op: opJoined, From: "n1", Pair: "ABCD", Conn: "c-1", User: "alice", Display: "Alice"},
		{Op: opRefused, From: "n1", Pair: "ABCD", Conn: "c-1", Code: messenger.CodeNotFound},
		{Op: opDeliver, From: "n1", Pair: "ABCD", Conn: "c-1", Type: messenger.TypePairRelay, Data: json.RawMessage(`{"a":[1,2]}`)},
		{Op: opDeliver, From: "n1", Pair: "ABCD", Conn: "c-1", Type: messenger.TypePairFailed, Reason: "the other side left"},
		{Op: opDeliver, From: "n1", Pair: "ABCD", Conn: "c-1", Type: messenger.TypeContactAdded, User: "alice", Display: "Alice"},
		{Op: opLinked, From: "n1", Pair: "ABCD", Conn: "c-1", Device: "abcdefghijkl"},
		{Op: opCheck, From: "n1", Pairs: []string{"ABCD", "WXYZ"}},
	} {
		b, _ := json.Marshal(m)
		f.Add(b)
	}
	f.Add([]byte(`{"op":"deliver","from":"n","pair":"ABCD","conn":"c","type":"welcome"}`))
	f.Add([]byte(`{"op":"relay","from":"n","pair":"abcd","conn":"c","data":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseNodeMsg(b)
		if err != nil {
			return
		}
		if m.Op == opLeft && m.Reason != reasonLeft && m.Reason != reasonLinkSlow {
			t.Fatalf("left with reason %q", m.Reason)
		}
		if m.Op == opDeliver {
			out := encode(messenger.Message{Type: m.Type, Pair: m.Pair, Data: m.Data, Reason: m.Reason, User: m.User, Display: m.Display})
			if _, err := messenger.ParseServerMessage(out); err != nil {
				t.Fatalf("accepted %s, which makes a client message %s that does not parse: %v", b, out, err)
			}
		}
	})
}
