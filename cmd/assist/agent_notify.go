package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/assist-project/assist/desktopnotify"
)

// notifier asks the user about an offer on the desktop.
type notifier interface {
	// Ask shows text with Accept and Decline; answer is called at most
	// once with the user's choice. The returned func withdraws the
	// question.
	Ask(ctx context.Context, text string, answer func(accept bool)) (withdraw func())
	Close() error
}

// openNotifier returns the desktop's notification service, or nil where
// none runs (the terminal still asks).
func openNotifier() notifier {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := desktopnotify.Open(ctx, desktopnotify.SessionAddress())
	if err != nil {
		slog.Info("agent: no desktop notifications", "err", err)
		return nil
	}
	return dbusNotifier{n}
}

type dbusNotifier struct{ n *desktopnotify.Notifier }

func (d dbusNotifier) Ask(ctx context.Context, text string, answer func(bool)) func() {
	withdraw, err := d.n.Ask(ctx, text, answer)
	if err != nil {
		slog.Warn("agent: desktop notification", "err", err)
	}
	return withdraw
}

func (d dbusNotifier) Close() error { return d.n.Close() }
