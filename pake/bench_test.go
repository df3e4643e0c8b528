package pake

import "testing"

// BenchmarkExchange measures one complete authentication, both sides: two
// generators, two shares, two Diffie-Hellman, two confirmations checked and
// one session key each.
func BenchmarkExchange(b *testing.B) {
	ca, cb := cfg(Initiator, "7-crayon-harbor", "exporter"), cfg(Responder, "7-crayon-harbor", "exporter")
	b.ReportAllocs()
	for b.Loop() {
		a, err := New(ca)
		if err != nil {
			b.Fatal(err)
		}
		r, err := New(cb)
		if err != nil {
			b.Fatal(err)
		}
		ra, err := a.Finish(r.Message())
		if err != nil {
			b.Fatal(err)
		}
		rb, err := r.Finish(a.Message())
		if err != nil {
			b.Fatal(err)
		}
		if err := rb.Verify(ra.Confirmation()); err != nil {
			b.Fatal(err)
		}
		if err := ra.Verify(rb.Confirmation()); err != nil {
			b.Fatal(err)
		}
		ra.SessionKey("display", 32)
		rb.SessionKey("display", 32)
	}
}

// BenchmarkNew is one side's first step: generator and share.
func BenchmarkNew(b *testing.B) {
	c := cfg(Initiator, "7-crayon-harbor", "exporter")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFinish is one side's second step: checking the peer's share and
// deriving ISK.
func BenchmarkFinish(b *testing.B) {
	peer := mustNew(b, cfg(Responder, "pw", "x")).Message()
	c := cfg(Initiator, "pw", "x")
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		ex := mustNew(b, c)
		b.StartTimer()
		if _, err := ex.Finish(peer); err != nil {
			b.Fatal(err)
		}
	}
}
