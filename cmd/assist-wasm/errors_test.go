//go:build !(js && wasm)

package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/assist-project/assist/transport/rtc/auth"
)

// TestAttemptsLeft: the page is told how many tries are left only when
// the novice said so, and only for a wrong password.
func TestAttemptsLeft(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		left int
		ok   bool
	}{
		{"wrong password, 3 left", &auth.HandshakeError{Kind: auth.ErrWrongPassword, Stage: "verdict", AttemptsLeft: 3, AttemptsKnown: true}, 3, true},
		{"wrong password, none left", &auth.HandshakeError{Kind: auth.ErrWrongPassword, Stage: "verdict", AttemptsKnown: true}, 0, true},
		{"wrapped", fmt.Errorf("join: %w", &auth.HandshakeError{Kind: auth.ErrWrongPassword, AttemptsLeft: 2, AttemptsKnown: true}), 2, true},
		{"an older novice said nothing", &auth.HandshakeError{Kind: auth.ErrWrongPassword, Stage: "verdict"}, 0, false},
		{"another failure", &auth.HandshakeError{Kind: auth.ErrUnknownInvitation, AttemptsLeft: 3, AttemptsKnown: true}, 0, false},
		{"not a handshake error", errors.New("network down"), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			left, ok := attemptsLeft(tc.err)
			if left != tc.left || ok != tc.ok {
				t.Fatalf("attemptsLeft = %d, %v; want %d, %v", left, ok, tc.left, tc.ok)
			}
		})
	}
}
