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
