package audit

import (
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// csvHeader names WriteCSV's columns.
var csvHeader = []string{"seq", "time", "kind", "party", "session", "novice", "expert", "machine", "path",
	"action", "from", "to", "rights", "reason", "auto", "file_direction", "file_name", "file_size",
	"file_sha256", "file_result", "cut_through", "key", "hash"}

// WriteCSV exports entries as CSV, one row each, times in UTC (RFC 3339).
// Names come from peers, so any cell a spreadsheet would take for a
// formula (starting with = + - @, a tab or a carriage return) is
// neutralised with a leading apostrophe.
func WriteCSV(w io.Writer, entries []Entry) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("audit: csv: %w", err)
	}
	for _, e := range entries {
		h := e.Hash()
		row := []string{strconv.FormatUint(e.Seq, 10), e.Time.UTC().Format(timeFormat), string(e.Kind),
			string(e.Party), e.Session, e.Novice, e.Expert, e.Machine, e.Path, e.Action, e.From, e.To,
			e.Rights, e.Reason, strconv.FormatBool(e.Auto), "", "", "", "", "", "",
			hex.EncodeToString(e.Key), hex.EncodeToString(h[:])}
		if f := e.File; f != nil {
			row[15], row[16], row[17], row[18], row[19] = f.Direction, f.Name, strconv.FormatUint(f.Size, 10),
				hex.EncodeToString(f.SHA256[:]), f.Result
		}
		if c := e.Cut; c != nil {
			row[20] = strconv.FormatUint(c.Through, 10)
		}
		for i := range row {
			row[i] = SafeCell(row[i])
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("audit: csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("audit: csv: %w", err)
	}
	return nil
}

// SafeCell neutralises a CSV cell that a spreadsheet would evaluate
// (OWASP's CSV injection: = + - @, tab, carriage return first).
func SafeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteJSON exports entries as a JSON array of their stored form, each
// with its hash added.
func WriteJSON(w io.Writer, entries []Entry) error {
	out := make([]entryJSON, len(entries))
	for i := range entries {
		out[i] = entries[i].toJSON()
		h := entries[i].Hash()
		out[i].Hash = hex.EncodeToString(h[:])
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("audit: json: %w", err)
	}
	return nil
}
