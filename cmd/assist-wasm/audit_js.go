//go:build js && wasm

package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/identity"
	"github.com/assist-project/assist/messenger"
)

// auditRow is one entry as the page lists it: the page formats Time in
// the reader's zone and inserts every field as text.
type auditRow struct {
	Time  time.Time `json:"time"`
	Party string    `json:"party"`
	Chain string    `json:"chain"`
	Seq   uint64    `json:"seq"`
	Words string    `json:"words"`
}

// auditSearch fetches every page of org's entries matching since and text
// and returns them worded, with their CSV and JSON exports.
func auditSearch(ctx context.Context, c *messenger.Client, org string, since time.Time, text string) (any, error) {
	var entries []audit.Entry
	for {
		page, more, err := c.AuditSearch(ctx, org, since, text, len(entries))
		if err != nil {
			return nil, err
		}
		es, err := audit.ReadAll(strings.NewReader(page))
		if err != nil {
			return nil, fmt.Errorf("the server sent a damaged entry: %w", err)
		}
		entries = append(entries, es...)
		if !more || len(es) == 0 {
			break
		}
	}
	rows := make([]auditRow, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, auditRow{Time: e.Time, Party: string(e.Party), Chain: identity.Fingerprint(e.Key), Seq: e.Seq, Words: e.Words()})
	}
	var csv, js bytes.Buffer
	if err := audit.WriteCSV(&csv, entries); err != nil {
		return nil, fmt.Errorf("audit CSV: %w", err)
	}
	if err := audit.WriteJSON(&js, entries); err != nil {
		return nil, fmt.Errorf("audit JSON: %w", err)
	}
	return toJS(map[string]any{"entries": rows, "csv": csv.String(), "json": js.String()}), nil
}
