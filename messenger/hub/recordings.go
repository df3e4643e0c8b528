package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/messenger"
)

// Session recordings on the server (issue 11). After a recorded session
// of an organisation with recording on, its machine uploads the
// recording, encrypted to the organisation's audit key, in chunks
// ("recording-upload"); the server keeps the file as it came (it cannot
// read it) under Config.RecordingsDir/ORG/ID.age, mode 0600, beside
// ID.json (machine, helper, start). The organisation's admins list them
// ("recording-list") and download them ("recording-get") to replay them
// with their audit identity.

// recordingMeta is what ID.json holds.
type recordingMeta struct {
	Machine string    `json:"machine"`
	User    string    `json:"user"`
	Start   time.Time `json:"start"`
}

// recordingLimits returns the per-file and per-organisation caps.
func (h *Hub) recordingLimits() (file, org int64) {
	file, org = h.cfg.MaxRecordingBytes, h.cfg.MaxOrgRecordingBytes
	if file <= 0 {
		file = 512 << 20
	}
	if org <= 0 {
		org = 8 << 30
	}
	return file, org
}

// orgRecordingsDir returns (and creates, 0700) org's folder.
func (h *Hub) orgRecordingsDir(org string) (string, error) {
	dir := filepath.Join(h.cfg.RecordingsDir, org)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("recordings folder: %w", err)
	}
	return dir, nil
}

// orgRecordingBytes sums the files in an organisation's folder, uploads
// under way included.
func orgRecordingBytes(dir string) (int64, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range es {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n, nil
}

// recordingUpload answers "recording-upload": only a machine of an
// organisation whose policy records may upload, into its own uploads.
// The first chunk (no session) starts an upload and names the helper
// and the session's start; each chunk must follow on what the server
// holds (offset); the last (more false) completes the file.
func (h *Hub) recordingUpload(ctx context.Context, c *conn, m messenger.Message) {
	orgs := h.orgs()
	if orgs == nil || h.cfg.RecordingsDir == "" {
		c.fail(m.Ref, messenger.CodeInvalid, "this server keeps no recordings")
		return
	}
	org, err := orgs.MachineOrg(ctx, c.user)
	if errors.Is(err, ErrNotFound) {
		c.fail(m.Ref, messenger.CodeUnauthorized, "only an organisation's machines upload recordings")
		return
	} else if err != nil {
		c.internal(m.Ref, m.Type, err)
		return
	}
	o, err := orgs.Org(ctx, org)
	if err != nil {
		c.internal(m.Ref, m.Type, err)
		return
	}
	if !o.Policy.Record {
		c.fail(m.Ref, messenger.CodeUnauthorized, "your organisation does not record sessions: this server takes no recording of it")
		return
	}
	dir, err := h.orgRecordingsDir(org)
	if err != nil {
		c.internal(m.Ref, m.Type, err)
		return
	}
	maxFile, maxOrg := h.recordingLimits()
	id := m.Session
	if id == "" {
		if m.Offset != 0 || m.User == "" || m.Since.IsZero() {
			c.fail(m.Ref, messenger.CodeInvalid, "a recording's first chunk names the helper and the session's start, at offset 0")
			return
		}
		total, err := orgRecordingBytes(dir)
		if err != nil {
			c.internal(m.Ref, m.Type, err)
			return
		}
		if total >= maxOrg {
			c.fail(m.Ref, messenger.CodeInvalid, "your organisation's recordings fill their space on this server: its admin removes old ones")
			return
		}
		var b [16]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
		meta, _ := json.Marshal(recordingMeta{Machine: c.user, User: m.User, Start: m.Since.UTC()})
		if err := os.WriteFile(filepath.Join(dir, id+".json"), meta, 0o600); err != nil {
			c.internal(m.Ref, m.Type, err)
			return
		}
	} else if meta, err := readRecordingMeta(dir, id); err != nil || meta.Machine != c.user {
		c.fail(m.Ref, messenger.CodeUnauthorized, "no upload of yours has this id: start again from the first chunk")
		return
	}
	part := filepath.Join(dir, id+".part")
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		c.internal(m.Ref, m.Type, err)
		return
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		c.internal(m.Ref, m.Type, err)
		return
	}
	if int64(m.Offset) != size {
		c.fail(m.Ref, messenger.CodeInvalid, fmt.Sprintf("the server holds %d bytes of this recording: send from there", size))
		return
	}
	if size+int64(len(m.Recording)) > maxFile {
		f.Close()
		os.Remove(part)
		os.Remove(filepath.Join(dir, id+".json"))
		c.fail(m.Ref, messenger.CodeInvalid, fmt.Sprintf("the recording is over %d MiB, more than this server keeps: it stays on the machine", maxFile>>20))
		return
	}
	if _, err := f.Write(m.Recording); err != nil {
		c.internal(m.Ref, m.Type, err)
		return
	}
	size += int64(len(m.Recording))
	if !m.More {
		if err := f.Sync(); err != nil {
			c.internal(m.Ref, m.Type, err)
			return
		}
		if ok, err := h.recordingInAudit(ctx, c, dir, id, part); err != nil {
			c.internal(m.Ref, m.Type, err)
			return
		} else if !ok {
			os.Remove(part)
			os.Remove(filepath.Join(dir, id+".json"))
			c.fail(m.Ref, messenger.CodeInvalid, "this recording is not in your audit log as this server holds it: upload the audit log first (it names the recording's SHA-256)")
			return
		}
		if err := os.Rename(part, filepath.Join(dir, id+".age")); err != nil {
			c.internal(m.Ref, m.Type, err)
			return
		}
		c.log.Info("messenger: recording stored", "org", org, "machine", c.user, "bytes", size)
	}
	c.reply(m.Ref, messenger.Message{Type: messenger.TypeRecordingStored, Session: id, Offset: int(size)})
}

// readRecordingMeta reads ID.json in dir.
func readRecordingMeta(dir, id string) (recordingMeta, error) {
	var meta recordingMeta
	b, err := os.ReadFile(filepath.Join(dir, id+".json"))
	if err != nil {
		return meta, err
	}
	return meta, json.Unmarshal(b, &meta)
}

// recordingAdmin checks that c is an admin of m's organisation and that
// the server keeps recordings; it returns the organisation's folder.
func (h *Hub) recordingAdmin(ctx context.Context, c *conn, m messenger.Message) (string, bool) {
	orgs := h.orgs()
	notAdmin := "you are not an admin of " + m.Organisation + ": its admins list and download its recordings"
	if orgs == nil {
		c.fail(m.Ref, messenger.CodeUnauthorized, notAdmin)
		return "", false
	}
	roles, err := orgs.Roles(ctx, c.user)
	if err != nil {
		c.internal(m.Ref, m.Type, err)
		return "", false
	}
	if roles[m.Organisation] != messenger.OrgAdmin {
		c.fail(m.Ref, messenger.CodeUnauthorized, notAdmin)
		return "", false
	}
	if h.cfg.RecordingsDir == "" {
		c.fail(m.Ref, messenger.CodeInvalid, "this server keeps no recordings")
		return "", false
	}
	return filepath.Join(h.cfg.RecordingsDir, m.Organisation), true
}

// recordingList answers "recording-list": the organisation's complete
// recordings, oldest first, for its admins.
func (h *Hub) recordingList(ctx context.Context, c *conn, m messenger.Message) {
	dir, ok := h.recordingAdmin(ctx, c, m)
	if !ok {
		return
	}
	es, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.internal(m.Ref, m.Type, err)
		return
	}
	out := []messenger.Recording{}
	for _, e := range es {
		id, ok := strings.CutSuffix(e.Name(), ".age")
		if !ok || !messenger.ValidRecordingID(id) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		meta, err := readRecordingMeta(dir, id)
		if err != nil {
			c.log.Warn("messenger: recording without its description", "org", m.Organisation, "err", err)
			continue
		}
		out = append(out, messenger.Recording{ID: id, Machine: meta.Machine, User: meta.User, Start: meta.Start, Size: fi.Size()})
	}
	slices.SortFunc(out, func(a, b messenger.Recording) int { return a.Start.Compare(b.Start) })
	c.reply(m.Ref, messenger.Message{Type: messenger.TypeRecordings, Organisation: m.Organisation, Recordings: out})
}

// recordingGet answers "recording-get": one chunk of a recording from
// offset, for the organisation's admins.
func (h *Hub) recordingGet(ctx context.Context, c *conn, m messenger.Message) {
	dir, ok := h.recordingAdmin(ctx, c, m)
	if !ok {
		return
	}
	f, err := os.Open(filepath.Join(dir, m.Session+".age"))
	if errors.Is(err, fs.ErrNotExist) {
		c.fail(m.Ref, messenger.CodeNotFound, "no recording of "+m.Organisation+" has this id: list them with assist recordings --org "+m.Organisation)
		return
	} else if err != nil {
		c.internal(m.Ref, m.Type, err)
		return
	}
	defer f.Close()
	buf := make([]byte, messenger.RecordingChunk)
	n, err := f.ReadAt(buf, int64(m.Offset))
	if err != nil && !errors.Is(err, io.EOF) {
		c.internal(m.Ref, m.Type, err)
		return
	}
	fi, err := f.Stat()
	if err != nil {
		c.internal(m.Ref, m.Type, err)
		return
	}
	more := int64(m.Offset+n) < fi.Size()
	c.reply(m.Ref, messenger.Message{Type: messenger.TypeRecordingData, Organisation: m.Organisation, Session: m.Session,
		Offset: m.Offset, Recording: buf[:n], More: more})
}

// recordingInAudit reports whether the machine's audit chain, as the
// server holds it, has a recording entry with the SHA-256 of the upload
// at path: the file is then the one the machine's log names. A server
// that keeps no audit trail checks nothing.
func (h *Hub) recordingInAudit(ctx context.Context, c *conn, dir, id, path string) (bool, error) {
	_, st := h.auditor()
	if st == nil {
		return true, nil
	}
	meta, err := readRecordingMeta(dir, id)
	if err != nil {
		return false, err
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	hash := sha256.New()
	if _, err := io.Copy(hash, f); err != nil {
		return false, err
	}
	sum := hash.Sum(nil)
	es, err := st.Search(ctx, audit.Query{Chains: []ed25519.PublicKey{ed25519.PublicKey(c.dev.Key)}, From: meta.Start.Add(-time.Hour)})
	if err != nil {
		return false, err
	}
	for _, e := range es {
		if e.Kind == audit.KindRecording && e.File != nil && bytes.Equal(e.File.SHA256[:], sum) {
			return true, nil
		}
	}
	return false, nil
}
