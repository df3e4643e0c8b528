package main

import (
	"strings"
	"testing"
)

func TestWriteLosslessTable(t *testing.T) {
	var b strings.Builder
	err := writeLosslessTable(&b, []LosslessResult{
		{Server: "assist", FirstMS: 30, ExactMS: 518.4, Exact: true, Bytes: 1810 << 10, FirstBytes: 40 << 10},
		{Server: "tigervnc", FirstMS: 263, Bytes: 3146 << 10, FirstBytes: 64 << 10, Differ: 835715, PSNR: 40.84},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| assist | 30 | 518 | 1810 | 40 | 0 | exact |",
		"| tigervnc | 263 | never | 3146 | 64 | 835715 | 40.8 |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
