package flagfile

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func TestApply(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		args       []string
		want       string // listen node public ice
		err        string
	}{
		{name: "file only", file: "# comment\n\nlisten = :8443\nnode=n1\npublic = true\nice = a\nice = b\n",
			want: ":8443 n1 true a,b"},
		{name: "flags win", file: "listen = :8443\nnode = n1\nice = a\n", args: []string{"--node", "n2", "--ice", "c"},
			want: ":8443 n2 false c"},
		{name: "value with spaces and equals", file: "node = a=b c\n", want: "127.0.0.1:1 a=b c false "},
		{name: "unknown", file: "listen = :1\nlisen = :2\n", err: "x.conf:2: unknown setting \"lisen\""},
		{name: "dashes", file: "--node = n\n", err: "x.conf:1: write \"--node\" without its dashes"},
		{name: "no equals", file: "node n\n", err: "x.conf:1: want NAME = VALUE"},
		{name: "bad bool", file: "public = maybe\n", err: "x.conf:1: public:"},
		{name: "config in config", file: "config = other\n", err: "x.conf:1: \"config\" cannot be set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			listen := fs.String("listen", "127.0.0.1:1", "")
			node := fs.String("node", "", "")
			public := fs.Bool("public", false, "")
			fs.String("config", "", "")
			var ice list
			fs.Var(&ice, "ice", "")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "x.conf")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			err := Apply(fs, path, "config")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join([]string{*listen, *node, map[bool]string{true: "true", false: "false"}[*public], ice.String()}, " ")
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestApplyMissingFile(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	if err := Apply(fs, filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("err %v, want a --config error", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"a = b\n", "# c\n\nx=y", "=", "a\n", "--a=b", strings.Repeat("k = v\n", 100)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		settings, err := Parse("f", data)
		if err != nil {
			return
		}
		for _, s := range settings {
			if s.Name == "" || strings.HasPrefix(s.Name, "-") || s.Name != strings.TrimSpace(s.Name) || s.Value != strings.TrimSpace(s.Value) || s.Line < 1 {
				t.Fatalf("bad setting %+v", s)
			}
		}
	})
}
