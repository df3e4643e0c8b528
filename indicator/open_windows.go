//go:build windows

package indicator

import "log/slog"

// Open returns Nop on Windows: the on-screen indicator there (a layered,
// click-through, topmost window) is still to do.
func Open(display string, logger *slog.Logger) (Indicator, error) {
	return Nop{}, nil
}
