// Package flagfile reads a configuration file whose settings are a
// command's flags, so that a service's options can live in a file while
// the command line still wins:
//
//	# assist serve, node 1
//	listen = :8443
//	node = n1
//	ice-server = turn:relay.example.org:3478?transport=udp
//	ice-server = turns:relay.example.org:443?transport=tcp
//
// One setting per line, NAME = VALUE, NAME being the flag without its
// dashes; a repeatable flag is given on several lines. Blank lines and
// lines starting with # are ignored; the value is the rest of the line,
// trimmed, with no quoting.
package flagfile

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
)

// MaxSize bounds a file, so a wrong path (a device, a log) fails clearly.
const MaxSize = 1 << 20

// Setting is one line of a file.
type Setting struct {
	Line        int
	Name, Value string
}

// Parse reads the settings of a file's contents; name is the file's name
// for errors.
func Parse(name string, data []byte) ([]Setting, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: larger than %d bytes: is it the right file?", name, MaxSize)
	}
	var out []Setting
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxSize)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("%s:%d: want NAME = VALUE, e.g. listen = :8443", name, n)
		}
		if strings.HasPrefix(k, "-") {
			return nil, fmt.Errorf("%s:%d: write %q without its dashes", name, n, k)
		}
		out = append(out, Setting{Line: n, Name: k, Value: v})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// Apply sets fs's flags from the file at path, except those given on the
// command line (already parsed into fs), which win. skip names flags a
// file may not set (e.g. the one naming the file).
func Apply(fs *flag.FlagSet, path string, skip ...string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	settings, err := Parse(path, data)
	if err != nil {
		return err
	}
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range settings {
		for _, name := range skip {
			if s.Name == name {
				return fmt.Errorf("%s:%d: %q cannot be set in the file", path, s.Line, s.Name)
			}
		}
		if fs.Lookup(s.Name) == nil {
			return fmt.Errorf("%s:%d: unknown setting %q: the settings are the command's flags without their dashes", path, s.Line, s.Name)
		}
		if given[s.Name] {
			continue
		}
		if err := fs.Set(s.Name, s.Value); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, s.Line, s.Name, err)
		}
	}
	return nil
}
