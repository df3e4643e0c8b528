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

// TestParseJoinTargetLANCode: the code of an invitation without a server
// (what assist invite prints as "code:"), alone or followed by the
// password, in the spellings people type.
func TestParseJoinTargetLANCode(t *testing.T) {
	dir := t.TempDir()
	named := filepath.Join(dir, "W848-T91J")
	inv, err := invitation.New("Ann", time.Hour, []string{"192.0.2.1:5820"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := invitation.WriteFile(named, inv); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		arg, code, password string
	}{
		{"W848-T91J", "W848-T91J", ""},
		{" w848 t91j ", "W848-T91J", ""},
		{"WB4B-TOIJ", "WB4B-T01J", ""},
		{"W848\u2013T91J", "W848-T91J", ""},
		{"W848-T91J K7M2-9XQT", "W848-T91J", "K7M29XQT"},
		{"w848t91jk7m29xqt", "W848-T91J", "K7M29XQT"},
	} {
		t.Run(tt.arg, func(t *testing.T) {
			got, err := parseJoinTarget(tt.arg)
			if err != nil {
				t.Fatal(err)
			}
			if got.lanCode != tt.code || got.lanPassword != tt.password || got.isCode || got.inv != nil {
				t.Fatalf("parseJoinTarget(%q) = %+v; want LAN code %q password %q", tt.arg, got, tt.code, tt.password)
			}
		})
	}
	// A file named like a code wins, as for word codes.
	if got, err := parseJoinTarget(named); err != nil || got.inv == nil || got.lanCode != "" {
		t.Fatalf("parseJoinTarget(%q) = %+v, %v; want the file", named, got, err)
	}
	for _, bad := range []string{"W848-T91", "W848-T91J-K7M2", "W848-T91U"} {
		if got, err := parseJoinTarget(bad); err == nil {
			t.Errorf("parseJoinTarget(%q) = %+v; want an error", bad, got)
		}
	}
}
