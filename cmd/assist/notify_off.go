package main

import "context"

// notifier asks the user about an offer on the desktop.
type notifier interface {
	// Ask shows text with Accept and Decline; answer is called at most
	// once with the user's choice. The returned func withdraws the
	// question.
	Ask(ctx context.Context, text string, answer func(accept bool)) (withdraw func())
	Close() error
}

// openNotifier returns the desktop's notifier, or nil where none runs.
func openNotifier() notifier { return nil }
