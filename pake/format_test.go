package pake

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// secretNeedles returns renderings of a secret that a careless print could
// produce: raw, hex in both cases, and the decimal form of %v on bytes.
func secretNeedles(secret []byte) []string {
	prefix := secret[:min(len(secret), 6)]
	dec := strings.Trim(fmt.Sprint(prefix), "[]")
	return []string{
		string(secret),
		hex.EncodeToString(prefix),
		strings.ToUpper(hex.EncodeToString(prefix)),
		dec,
	}
}

func assertNoSecrets(t *testing.T, out string, secrets map[string][]byte) {
	t.Helper()
	for name, s := range secrets {
		for _, needle := range secretNeedles(s) {
			if strings.Contains(out, needle) {
				i := strings.Index(out, needle)
				t.Errorf("output leaks %s (%q) at %d: ...%q...", name, needle, i, out[max(0, i-200):min(len(out), i+100)])
			}
		}
	}
}

// printAll prints every value with every verb; the format strings are not
// constants so that vet lets odd verb/type pairs through, as a careless log
// line would.
func printAll(values ...any) string {
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"}
	var b strings.Builder
	for _, v := range values {
		for _, verb := range verbs {
			fmt.Fprintf(&b, verb+"\n", v)
		}
	}
	return b.String()
}

func TestFormatHidesSecrets(t *testing.T) {
	const password = "correct horse battery staple"
	a := mustNew(t, cfg(Initiator, password, "exporter"))
	b := mustNew(t, cfg(Responder, password, "exporter"))
	secrets := map[string][]byte{
		"password": []byte(password),
		"scalar":   a.secret.y.Encode(nil),
	}

	// Every verb, on pointers, values, and values nested in structs with
	// exported and unexported fields (where fmt falls back to reflection).
	type wrapper struct {
		Ex  *Exchange
		Val Exchange
		ex  Exchange
	}
	out := printAll(a, *a, wrapper{a, *a, *a}, []*Exchange{a}, []Exchange{*a}, map[string]*Exchange{"a": a}, a.String())
	assertNoSecrets(t, out, secrets)
	if !strings.Contains(out, "pake.Exchange{role: initiator}") {
		t.Errorf("Exchange formats as %q", fmt.Sprint(a))
	}

	ra, err := a.Finish(b.Message())
	if err != nil {
		t.Fatal(err)
	}
	secrets["ISK"] = ra.secret.isk[:]
	secrets["mac key"] = ra.secret.macKey[:]
	type rwrapper struct {
		R   *Result
		Val Result
		r   Result
	}
	out = printAll(ra, *ra, rwrapper{ra, *ra, *ra}, []Result{*ra}, ra.String())
	assertNoSecrets(t, out, secrets)
	if want := "pake.Result{role: initiator, verified: false}"; !strings.Contains(out, want) {
		t.Errorf("Result formats as %q, want %q", fmt.Sprint(ra), want)
	}
	// Errors must not carry secrets either.
	err = ra.Verify([]byte("nope"))
	assertNoSecrets(t, fmt.Sprintf("%v %+v %#v", err, err, err), secrets)
}
