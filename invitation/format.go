package invitation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxFileSize is the largest invitation Parse accepts. A valid one is a few
// kilobytes at most; the limit keeps a hostile file from costing memory.
const MaxFileSize = 64 << 10

// wireTime is how times are written: RFC 3339 in UTC, whole seconds.
const wireTime = "2006-01-02T15:04:05Z"

// wire is the JSON document of format version 1; the field order is the
// order members appear in files.
type wire struct {
	Type    string   `json:"type"`
	Version int      `json:"version"`
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Created string   `json:"created"`
	Expires string   `json:"expires"`
	Addrs   []string `json:"addrs"`
	Server  string   `json:"server,omitempty"`
}

// v1Members lists the members of version 1 and whether each is required.
var v1Members = map[string]bool{
	"type": true, "version": true, "id": true, "name": true,
	"created": true, "expires": true, "addrs": false, "server": false,
}

// Marshal encodes the invitation in the file format: indented JSON ending in
// a newline. It refuses an invitation whose fields break the format's rules
// (but not an expired one).
func (inv *Invitation) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	if err := inv.encode(&buf, "  "); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// encode writes the JSON document, indented when indent is not empty.
func (inv *Invitation) encode(w io.Writer, indent string) error {
	if err := inv.checkFields(); err != nil {
		return fmt.Errorf("invitation: marshal: %w", err)
	}
	doc := wire{
		Type:    typeMarker,
		Version: inv.Version,
		ID:      inv.ID,
		Name:    inv.Name,
		Created: inv.Created.UTC().Format(wireTime),
		Expires: inv.Expires.UTC().Format(wireTime),
		Addrs:   inv.Addrs,
		Server:  inv.Server,
	}
	if doc.Addrs == nil {
		doc.Addrs = []string{}
	}
	enc := json.NewEncoder(w)
	// Names with "<" or "&" should read as typed when someone opens the file.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("invitation: marshal: %w", err)
	}
	return nil
}

// Parse decodes an invitation file strictly (see the package documentation
// for what it rejects). It checks every field but not the time: call
// Validate with the current time before using the invitation.
//
// Errors wrap ErrCorrupt for damaged or foreign data and
// ErrUnsupportedVersion for files from a newer assist.
func Parse(data []byte) (*Invitation, error) {
	if len(data) > MaxFileSize {
		return nil, corrupt(fmt.Sprintf("%d bytes, larger than any invitation (%d)", len(data), MaxFileSize))
	}
	if !utf8.Valid(data) {
		return nil, corrupt("not UTF-8 text")
	}
	if !json.Valid(data) {
		return nil, corrupt(jsonProblem(data))
	}
	members, err := splitMembers(data)
	if err != nil {
		return nil, corrupt(err.Error())
	}
	var typ string
	if raw, ok := members["type"]; !ok || json.Unmarshal(raw, &typ) != nil || typ != typeMarker {
		return nil, corrupt(`not an Assist invitation (no "type": "` + typeMarker + `")`)
	}
	version, err := memberVersion(members["version"])
	if err != nil {
		return nil, corrupt(err.Error())
	}
	if version > Version {
		return nil, unsupportedVersion(version)
	}
	var doc wire
	// Sorted, so that a file with several problems always reports the same.
	for _, name := range slices.Sorted(maps.Keys(members)) {
		raw := members[name]
		if _, known := v1Members[name]; !known {
			return nil, corrupt(fmt.Sprintf("unknown member %.40q", name))
		}
		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			return nil, corrupt(fmt.Sprintf("member %q is null", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(v1Members)) {
		if _, ok := members[name]; v1Members[name] && !ok {
			return nil, corrupt(fmt.Sprintf("member %q is missing", name))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, corrupt(err.Error())
	}
	inv := &Invitation{
		Version: version,
		ID:      doc.ID,
		Name:    doc.Name,
		Addrs:   doc.Addrs,
		Server:  doc.Server,
	}
	if len(inv.Addrs) == 0 {
		inv.Addrs = nil
	}
	if inv.Created, err = parseTime(doc.Created); err != nil {
		return nil, corrupt("created: " + err.Error())
	}
	if inv.Expires, err = parseTime(doc.Expires); err != nil {
		return nil, corrupt("expires: " + err.Error())
	}
	if err := inv.checkFields(); err != nil {
		// A field that breaks the rules means the file was altered or
		// written by a broken program; either way a new one is the cure.
		return nil, &wrapError{
			msg: fmt.Sprintf("invitation: the invitation is damaged (%s); ask %s to send a new invitation",
				strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "), novice(validName(inv.Name))),
			errs: []error{ErrCorrupt, err},
		}
	}
	return inv, nil
}

// corrupt makes the error for damaged data: what is wrong, and what the
// user can do about it.
func corrupt(detail string) error {
	return fmt.Errorf("%w (%s); it may have been cut short or altered on the way: ask the novice to send a new invitation",
		ErrCorrupt, detail)
}

// validName returns name if it is safe to print in a message, else "".
func validName(name string) string {
	if checkName(name) != nil {
		return ""
	}
	return name
}

// jsonProblem describes why data is not valid JSON, with the byte offset.
func jsonProblem(data []byte) string {
	var v any
	err := json.Unmarshal(data, &v)
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		if syn.Offset >= int64(len(bytes.TrimRight(data, " \t\r\n"))) {
			return "it ends too early"
		}
		return fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn)
	case err != nil:
		return err.Error()
	}
	return "invalid JSON"
}

// splitMembers returns the members of the top-level JSON object, refusing
// duplicates: encoding/json would silently keep the last one, and two
// implementations that pick different duplicates could disagree about
// which novice an invitation points to. data must be valid JSON.
func splitMembers(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	members := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("malformed object")
		}
		if _, dup := members[name]; dup {
			return nil, fmt.Errorf("member %q appears twice", name)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		members[name] = raw
	}
	return members, nil
}

// memberVersion reads the "version" member, which must be a positive
// integer written plainly.
func memberVersion(raw json.RawMessage) (int, error) {
	if raw == nil {
		return 0, errors.New(`member "version" is missing`)
	}
	s := string(raw)
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || strconv.Itoa(v) != s {
		return 0, fmt.Errorf("version %.20s is not a positive integer", s)
	}
	return v, nil
}

// parseTime reads an RFC 3339 time, converting it to UTC and dropping
// fractions of a second, which the format does not carry.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", s)
	}
	return t.UTC().Truncate(time.Second), nil
}
