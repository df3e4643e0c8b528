package audit

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
)

// Recorder records one session in a chain, from one party's side. Its
// methods never stop a session: an entry that cannot be written is logged
// and remembered (Err), because help must not fail for want of a disk
// (the session's record then lacks entries, which its other party's log
// still has). It is safe for concurrent use; entries keep the order of
// the calls. A nil Recorder records nothing.
type Recorder struct {
	log    Appender
	logger *slog.Logger

	mu    sync.Mutex
	base  Entry // Party, Session, Novice, Expert, Machine, Path
	last  Entry // the last rights entry, so repeats are left out
	ended bool
	err   error
}

// NewRecorder starts recording a session for party in log, under a new
// random session id.
func NewRecorder(log Appender, party Party, logger *slog.Logger) *Recorder {
	if logger == nil {
		logger = slog.Default()
	}
	id := make([]byte, 8)
	rand.Read(id)
	return &Recorder{log: log, logger: logger, base: Entry{Party: party, Session: hex.EncodeToString(id)}}
}

// Session is the session's id in this chain.
func (r *Recorder) Session() string {
	if r == nil {
		return ""
	}
	return r.base.Session
}

// Err is the first error writing an entry, if any.
func (r *Recorder) Err() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *Recorder) add(e Entry) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended || r.log == nil {
		return
	}
	e.Party, e.Session = r.base.Party, r.base.Session
	e.Novice, e.Expert, e.Machine = r.base.Novice, r.base.Expert, r.base.Machine
	if e.Path == "" {
		e.Path = r.base.Path
	}
	if e.Kind == KindEnd {
		r.ended = true
	}
	if _, err := r.log.Append(e); err != nil {
		// The entry's words may hold names, never secrets; the error
		// says which file.
		r.logger.Warn("audit: entry not recorded", "kind", e.Kind, "err", err)
		if r.err == nil {
			r.err = err
		}
	}
}

// Start records who helps whom, on which machine, over which path.
func (r *Recorder) Start(novice, expert, machine, path string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.base.Novice, r.base.Expert, r.base.Machine, r.base.Path = novice, expert, machine, path
	r.mu.Unlock()
	r.add(Entry{Kind: KindStart})
}

// SetExpert names the expert once they are known (after Start).
func (r *Recorder) SetExpert(name string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.base.Expert = name
	r.mu.Unlock()
}

// Consent records a transition of the novice's consent.
func (r *Recorder) Consent(action, from, to, rights, reason string, auto bool) {
	r.add(Entry{Kind: KindConsent, Action: action, From: from, To: to, Rights: rights, Reason: reason, Auto: auto})
}

// Rights records a state the novice's side reported (the expert's
// record); a report equal to the last one is left out.
func (r *Recorder) Rights(state, rights, reason string) {
	if r == nil {
		return
	}
	e := Entry{Kind: KindRights, To: state, Rights: rights, Reason: reason}
	r.mu.Lock()
	same := r.last.To == e.To && r.last.Rights == e.Rights && r.last.Reason == e.Reason
	r.last = e
	r.mu.Unlock()
	if !same {
		r.add(e)
	}
}

// Path records that the connection moved to another path.
func (r *Recorder) Path(path string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.base.Path = path
	r.mu.Unlock()
	r.add(Entry{Kind: KindPath, Path: path})
}

// File records a file transfer that ended.
func (r *Recorder) File(f File, reason string) {
	r.add(Entry{Kind: KindFile, File: &f, Reason: reason})
}

// Recorded records the session's recording (its encrypted file).
func (r *Recorder) Recorded(f File) {
	f.Direction = ""
	r.add(Entry{Kind: KindRecording, File: &f})
}

// End records how the session ended; nothing is recorded after it.
func (r *Recorder) End(reason string) {
	r.add(Entry{Kind: KindEnd, Reason: reason})
}
