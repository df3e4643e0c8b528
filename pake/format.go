package pake

import (
	"fmt"
	"io"
)

// Format prints an Exchange as "pake.Exchange{role: initiator}" for every
// verb, %#v and %+v included, so no password-derived value reaches a log
// line by accident. It has a value receiver so that printing an Exchange
// value (not only a pointer) is covered too.
func (e Exchange) Format(f fmt.State, verb rune) {
	io.WriteString(f, e.String())
}

// String returns "pake.Exchange{role: <role>}".
func (e Exchange) String() string {
	return "pake.Exchange{role: " + e.role.String() + "}"
}

// Format prints a Result as "pake.Result{role: initiator, verified: false}"
// for every verb; ISK and the confirmation key are never printed.
func (r Result) Format(f fmt.State, verb rune) {
	io.WriteString(f, r.String())
}

// String returns "pake.Result{role: <role>, verified: <bool>}".
func (r Result) String() string {
	return fmt.Sprintf("pake.Result{role: %v, verified: %t}", r.role, r.verified)
}
