package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/assist-project/assist/account"
	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/messenger"
)

// keyedExpiry is how long the novice's device keeps the session of an
// accepted request open for the expert's device, which joins at once.
const keyedExpiry = 5 * time.Minute

// sessionOptions are the flags of the session an accepted request starts:
// the novice's side takes those of assist invite, the expert's those of
// assist join. A command that can end up on either side has both.
type sessionOptions struct {
	novice *noviceOptions
	expert *expertOptions
	// org: this side knows the acceptance is an organisation's session
	// (the agent; a helper offering a listed machine), whose peer key the
	// server vouches for (account.OrgSessionPassword). Never set from
	// the server's word alone.
	org bool
}

// addBothSessionFlags adds the expert's and the novice's flags to fs; the
// one flag they share, --name, is the expert's and is copied to the
// novice's options by sync.
func addBothSessionFlags(fs *flag.FlagSet) sessionOptions {
	so := sessionOptions{expert: addExpertFlags(fs)}
	nfs := flag.NewFlagSet("novice", flag.ContinueOnError)
	so.novice = addNoviceFlags(nfs)
	nfs.VisitAll(func(f *flag.Flag) {
		if fs.Lookup(f.Name) == nil {
			fs.Var(f.Value, f.Name, "novice: "+f.Usage)
		}
	})
	return so
}

// syncName gives the novice's side the --name of the expert's flags.
func (so sessionOptions) syncName() {
	if so.novice != nil && so.expert != nil {
		so.novice.Name = so.expert.Name
	}
}

// runAccepted checks the peer of an accepted request, derives the session
// password and runs this side of the session (the novice's as assist invite
// does, the expert's as assist join does), marked busy meanwhile. stdin is
// where the novice's consent answers come from.
func runAccepted(ctx context.Context, dev *account.Device, c *messenger.Client, accepted messenger.Message,
	server string, so sessionOptions, stdin *os.File, stdout io.Writer) error {
	var password string
	var err error
	if so.org {
		password, err = dev.OrgSessionPassword(accepted)
	} else {
		password, err = dev.SessionPassword(ctx, c, accepted)
	}
	if err != nil {
		return err
	}
	if server == "" {
		server = dev.Config().Server
	}
	// The contact's name as this device paired with them, not the
	// server's word.
	peer := accepted.Peer.User
	if ct, ok := dev.Config().Contacts[peer]; ok && ct.Display != "" {
		peer = ct.Display
	}
	if so.org {
		peer = orgPeerName(accepted)
	}
	ks := keyedSession{
		Server: server, Fingerprint: dev.Config().Fingerprint, SID: accepted.Session,
		Password: password, Peer: peer, Expires: time.Now().Add(keyedExpiry),
	}
	if err := c.SetState(ctx, messenger.StateBusy); err != nil {
		return err
	}
	var (
		recMu    sync.Mutex
		recorded []recordedFile
	)
	switch {
	case accepted.Role == messenger.RoleNovice && so.novice != nil:
		no := *so.novice
		if so.org {
			// The organisation's server keeps a copy of each recording.
			no.Recorded = func(path string, start time.Time) {
				recMu.Lock()
				recorded = append(recorded, recordedFile{path, start})
				recMu.Unlock()
			}
		}
		err = runKeyedNovice(ctx, stdin, stdout, ks, no)
	case accepted.Role == messenger.RoleExpert && so.expert != nil:
		eo := *so.expert
		if so.org {
			eo.Machine = accepted.Peer.User
		}
		err = runKeyedExpert(ctx, stdout, ks, eo)
	default:
		err = fmt.Errorf("this command cannot be the %s of a session", accepted.Role)
	}
	if so.org {
		// The organisation's server keeps a copy of this side's chain.
		var log *audit.FileLog
		if so.novice != nil {
			log = so.novice.AuditLog
		} else if l, lerr := openAuditLog(); lerr == nil {
			log = l
		}
		if log != nil {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dialTimeout)
			seq, uerr := uploadAudit(uctx, c, log)
			if uerr != nil && c.Err() != nil {
				// The connection died during the session (its server
				// node went away): once more on a fresh one, which a
				// load balancer sends to another node.
				if c2, derr := dev.Connect(uctx, server); derr == nil {
					seq, uerr = uploadAudit(uctx, c2, log)
					c2.Close()
				}
			}
			cancel()
			if uerr != nil {
				fmt.Fprintf(os.Stderr, "note: the audit log was not uploaded to your organisation's server (%v); it is tried again after the next session\n", uerr)
			} else {
				fmt.Fprintf(stdout, "audit: uploaded to entry %d\n", seq)
			}
		}
	}
	recMu.Lock()
	files := recorded
	recMu.Unlock()
	for _, r := range files {
		if id, uerr := uploadRecording(ctx, c, r, accepted.Peer.User); uerr != nil {
			fmt.Fprintf(os.Stderr, "note: the session's recording was not uploaded to your organisation's server (%v); it stays in %s\n", uerr, r.path)
		} else {
			fmt.Fprintf(stdout, "recording: uploaded as %s\n", id)
		}
	}
	// Back to online for the moment left before the command ends.
	if serr := c.SetState(context.WithoutCancel(ctx), messenger.StateOnline); err == nil && serr != nil && !errors.Is(serr, messenger.ErrClosed) {
		err = serr
	}
	return err
}

// lineReader reads lines from stdin one at a time, on demand, so that
// nothing is read ahead of what the command asked for: on a terminal the
// novice's session takes the terminal over after the last answer. Its
// goroutine ends at end of input or on close; a read under way from a
// terminal or pipe cannot be interrupted, so close lets it end when that
// read returns.
type lineReader struct {
	want    chan struct{}
	stop    chan struct{} // closed by close
	done    chan struct{} // closed when the goroutine has ended
	lines   chan string   // closed at end of input
	pending bool          // a line was asked for and not received yet
	eof     bool
	once    sync.Once
}

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{want: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}), lines: make(chan string)}
	go func() {
		defer close(lr.done)
		defer close(lr.lines)
		br := bufio.NewReader(r)
		for {
			select {
			case <-lr.want:
			case <-lr.stop:
				return
			}
			l, err := br.ReadString('\n')
			if l != "" {
				select {
				case lr.lines <- strings.TrimRight(l, "\r\n"):
				case <-lr.stop:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return lr
}

// close ends the reader's goroutine (at once, or when the read under way
// returns).
func (lr *lineReader) close() { lr.once.Do(func() { close(lr.stop) }) }

// ask asks for the next line unless a request is out already, and returns
// the channel it comes on (nil after end of input).
func (lr *lineReader) ask() <-chan string {
	if lr.eof {
		return nil
	}
	if !lr.pending {
		select {
		case lr.want <- struct{}{}:
		case <-lr.done: // lines is closed: the receive says so
		}
		lr.pending = true
	}
	return lr.lines
}

// got records what arrived on the channel returned by ask.
func (lr *lineReader) got(ok bool) {
	lr.pending = false
	if !ok {
		lr.eof = true
	}
}

// pipe hands the rest of the input to a new pipe, for the novice's session
// of a script that answers on stdin; close the returned file when done. The
// copying goroutine ends at end of input or when the reader is closed.
func (lr *lineReader) pipe() (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	go func() {
		defer w.Close()
		for {
			ch := lr.ask()
			if ch == nil {
				return
			}
			l, ok := <-ch
			lr.got(ok)
			if !ok {
				return
			}
			if _, err := fmt.Fprintln(w, l); err != nil {
				return
			}
		}
	}()
	return r, nil
}

// recordedFile is a finished recording of an organisation's session.
type recordedFile struct {
	path  string
	start time.Time
}

// uploadRecording sends a finished recording to the organisation's
// server; the file stays on the machine too.
func uploadRecording(ctx context.Context, c *messenger.Client, r recordedFile, helper string) (string, error) {
	f, err := os.Open(r.path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// A recording may be large: paced at about 500 KiB/s, 512 MiB take
	// some 17 minutes.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Minute)
	defer cancel()
	return c.UploadRecording(uctx, f, helper, r.start)
}
