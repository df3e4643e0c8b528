package rtc

import (
	"context"
	"io"
	"testing"

	"github.com/assist-project/assist/pake"
)

func writeFrame(t *testing.T, w io.Writer, kind byte, p []byte) {
	t.Helper()
	if err := pake.WriteMessage(w, kind, p); err != nil {
		t.Errorf("write frame: %v", err)
	}
}

func readFrame(t *testing.T, r io.Reader) (byte, []byte) {
	t.Helper()
	k, p, err := pake.ReadMessage(r, pake.MaxFramePayload)
	if err != nil {
		t.Errorf("read frame: %v", err)
	}
	return k, p
}

// openAndStop opens a data channel without authenticating, as a hostile
// peer or a man in the middle would, and ends its signalling at once.
func openAndStop(ctx context.Context, sig Signaler, cfg *Config, expert bool) (*Conn, []byte, func(), error) {
	c, fp, stop, err := open(ctx, sig, cfg, expert, cfg.logger())
	if stop != nil {
		stop()
	}
	return c, fp, stop, err
}

func TestLinkLocal(t *testing.T) {
	for addr, want := range map[string]bool{
		"fe80::fc:ff:fe00:1": true,
		"169.254.10.1":       true,
		"fd00::2":            false,
		"192.0.2.2":          false,
		"198.18.1.2":         false,
		"not an address":     false,
	} {
		if got := linkLocal(addr); got != want {
			t.Errorf("linkLocal(%q) = %v, want %v", addr, got, want)
		}
	}
}
