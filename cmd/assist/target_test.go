package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/invitation"
)

func TestParseJoinTarget(t *testing.T) {
	inv, err := invitation.New("Ann", time.Hour, []string{"192.0.2.1:5820"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	inv.Server = "https://assist.example.org:8443"
	dir := t.TempDir()
	file := filepath.Join(dir, "help.assist")
	if err := invitation.WriteFile(file, inv); err != nil {
		t.Fatal(err)
	}
	// A file whose name is a code: the file wins.
	codeNamed := filepath.Join(dir, "7-crayon-harbor")
	if err := invitation.WriteFile(codeNamed, inv); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name, arg  string
		wantCode   string // "" when an invitation is expected
		wantServer string
		wantInv    bool
		wantErr    string
	}{
		{name: "code", arg: "7-crayon-harbor", wantCode: "7-crayon-harbor"},
		{name: "code spaced, capitalised", arg: " 7 Crayon Harbor ", wantCode: "7-crayon-harbor"},
		{name: "browser link", arg: "https://assist.example.org:8443/#7-crayon-harbor", wantCode: "7-crayon-harbor", wantServer: "https://assist.example.org:8443"},
		{name: "browser link with a path", arg: "https://example.org/assist/#12-crab-goat", wantCode: "12-crab-goat", wantServer: "https://example.org/assist"},
		{name: "invitation link", arg: inv.URL(), wantInv: true},
		{name: "file", arg: file, wantInv: true},
		{name: "file named like a code", arg: codeNamed, wantInv: true},
		{name: "misspelt code", arg: "7-crayon-harbour", wantErr: "not one of Assist's code words"},
		{name: "link without code", arg: "https://assist.example.org/", wantErr: "no code after its #"},
		{name: "link with a bad code", arg: "https://assist.example.org/#7-nope-nope", wantErr: "the link's code"},
		{name: "link with credentials", arg: "https://u:p@assist.example.org/#7-crayon-harbor", wantErr: "not a link"},
		{name: "damaged invitation link", arg: "assist://invite?d=!!", wantErr: "base64url"},
		{name: "missing file", arg: filepath.Join(dir, "nope.assist"), wantErr: "does not exist"},
		{name: "nothing like it", arg: "help-me", wantErr: "not an invitation file, an invitation link or a code"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseJoinTarget(tt.arg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseJoinTarget(%q) = %+v, %v; want an error containing %q", tt.arg, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseJoinTarget(%q): %v", tt.arg, err)
			}
			if tt.wantInv {
				if got.inv == nil || got.inv.ID != inv.ID || got.inv.Server != inv.Server || got.isCode {
					t.Fatalf("parseJoinTarget(%q) = %+v; want the invitation %s", tt.arg, got, inv.ID)
				}
				return
			}
			if !got.isCode || got.code.String() != tt.wantCode || got.server != tt.wantServer || got.inv != nil {
				t.Fatalf("parseJoinTarget(%q) = code %q server %q (isCode %v); want %q, %q", tt.arg, got.code, got.server, got.isCode, tt.wantCode, tt.wantServer)
			}
		})
	}
}
