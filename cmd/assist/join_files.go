package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/assist-project/assist/filetransfer"
	"github.com/assist-project/assist/session"
	"github.com/assist-project/assist/webview"
	"golang.org/x/term"
)

// pathsFlag collects a repeatable flag's values (--send A --send B).
type pathsFlag []string

func (p *pathsFlag) String() string     { return strings.Join(*p, ",") }
func (p *pathsFlag) Set(v string) error { *p = append(*p, v); return nil }

// joinCommand is one line typed at assist join's terminal.
type joinCommand struct {
	verb string // "send", "accept", "refuse", "files", "cancel"
	arg  string
}

// joinHelp is printed once the session starts.
const joinHelp = "commands: send PATH (send a file), accept / refuse (a file offered to you), files (ask to exchange files), cancel (stop your transfers)"

// fromKey turns the console's file keys into commands: "send PATH",
// "files" (f), "accept"/"refuse" [ID] and "cancel"; y and n answer a file
// offered to the expert, and only while one waits (an empty line, which
// the console reads as n, must not refuse anything else).
func (f *expertFiles) fromKey(k key) (joinCommand, bool) {
	switch k.kind {
	case 's':
		return joinCommand{verb: "send", arg: k.text}, true
	case 'S':
		fmt.Fprintln(f.out, "type the path of the file to send, then Enter")
		return joinCommand{}, false
	case 'f':
		return joinCommand{verb: "files"}, true
	case 'A':
		return joinCommand{verb: "accept", arg: k.text}, true
	case 'R':
		return joinCommand{verb: "refuse", arg: k.text}, true
	case 'K':
		return joinCommand{verb: "cancel"}, true
	case 'y', 'n':
		if len(f.offers) == 0 {
			return joinCommand{}, false
		}
		if k.kind == 'y' {
			return joinCommand{verb: "accept"}, true
		}
		return joinCommand{verb: "refuse"}, true
	}
	return joinCommand{}, false
}

// expertFiles is assist join's side of file transfers: the files to send
// once allowed, the offers waiting for the expert's answer, progress.
type expertFiles struct {
	exp      *session.Expert
	out      io.Writer
	novice   string
	dir      string
	toSend   []string // --send, sent once the files right arrives
	offers   []filetransfer.Offer
	mine     map[filetransfer.ID]bool // transfers in flight, to cancel
	allowed  bool
	progress *fileProgress
	// publish shows a transfer on the browser viewer's files panel.
	publish func(webview.FileEvent)
}

// pageFiles is the browser viewer's files panel: its requests become the
// same commands as the terminal's, run by serveExpert's loop.
type pageFiles chan joinCommand

func (p pageFiles) do(c joinCommand) error {
	select {
	case p <- c:
		return nil
	default:
		return errors.New("too many requests at once: try again")
	}
}

func (p pageFiles) RequestFiles(context.Context) error { return p.do(joinCommand{verb: "files"}) }
func (p pageFiles) SendFile(_ context.Context, path string) error {
	return p.do(joinCommand{verb: "send", arg: path})
}
func (p pageFiles) CancelFile(id string) error { return p.do(joinCommand{verb: "cancel", arg: id}) }
func (p pageFiles) AnswerFile(id string, accept bool) error {
	verb := "refuse"
	if accept {
		verb = "accept"
	}
	return p.do(joinCommand{verb: verb, arg: id})
}

func pageFileEvent(ev filetransfer.Event) webview.FileEvent {
	return webview.FileEvent{ID: hex.EncodeToString(ev.ID[:]), Name: ev.Name, Size: ev.Size, Done: ev.Done,
		State: string(ev.State), Incoming: ev.Incoming, Reason: ev.Reason, Path: ev.Path}
}

func newExpertFiles(exp *session.Expert, out io.Writer, novice string, opts expertOptions) *expertFiles {
	tty := false
	if f, ok := out.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &expertFiles{exp: exp, out: out, novice: novice, dir: opts.FilesDir,
		toSend: append([]string(nil), opts.Send...), mine: make(map[filetransfer.ID]bool),
		progress: newFileProgress(out, tty, novice), publish: func(webview.FileEvent) {}}
}

// rights follows the novice's files right.
func (f *expertFiles) rights(ctx context.Context, r session.Rights) {
	allowed := r.Has(session.RightFiles)
	if allowed == f.allowed {
		return
	}
	f.allowed = allowed
	if !allowed {
		fmt.Fprintf(f.out, "files: %s has not allowed files (type files to ask)\n", f.novice)
		return
	}
	fmt.Fprintf(f.out, "files: %s allowed files both ways: type send PATH; files from %s go to %s\n", f.novice, f.novice, f.dir)
	for _, p := range f.toSend {
		f.send(ctx, p)
	}
	f.toSend = nil
}

func (f *expertFiles) send(ctx context.Context, path string) {
	id, err := f.exp.SendFile(ctx, path)
	if err != nil {
		fmt.Fprintf(f.out, "file not sent: %v\n", err)
		return
	}
	f.mine[id] = true
}

func (f *expertFiles) offered(o filetransfer.Offer) {
	f.offers = append(f.offers, o)
	f.publish(webview.FileEvent{ID: hex.EncodeToString(o.ID[:]), Name: o.Name, Size: o.Size,
		State: string(filetransfer.Offered), Incoming: true, Asking: true})
	fmt.Fprintf(f.out, "file: %s wants to send you %s (%s): type accept or refuse\n", f.novice, o.Name, filetransfer.Size(o.Size))
}

func (f *expertFiles) event(ev filetransfer.Event) {
	switch ev.State {
	case filetransfer.Offered, filetransfer.Transferring:
	default:
		delete(f.mine, ev.ID)
	}
	if ev.Incoming && ev.State == filetransfer.Offered {
		return // offered() said it, with the question
	}
	f.publish(pageFileEvent(ev))
	f.progress.show(ev)
}

func (f *expertFiles) command(ctx context.Context, c joinCommand) {
	switch c.verb {
	case "send":
		if c.arg == "" {
			fmt.Fprintln(f.out, "send what? type send PATH")
			return
		}
		if !f.allowed {
			f.toSend = append(f.toSend, c.arg)
			fmt.Fprintf(f.out, "files: %s has not allowed files yet: asking; %s goes once allowed\n", f.novice, c.arg)
			if err := f.exp.RequestFiles(ctx); err != nil {
				fmt.Fprintf(f.out, "files request not sent: %v\n", err)
			}
			return
		}
		f.send(ctx, c.arg)
	case "accept", "y", "refuse", "n":
		i := 0
		if c.arg != "" {
			i = slices.IndexFunc(f.offers, func(o filetransfer.Offer) bool { return hex.EncodeToString(o.ID[:]) == c.arg })
		}
		if i < 0 || len(f.offers) == 0 {
			fmt.Fprintln(f.out, "no file waits for an answer")
			return
		}
		o := f.offers[i]
		f.offers = slices.Delete(f.offers, i, i+1)
		if c.verb == "accept" || c.verb == "y" {
			o.Accept()
			fmt.Fprintf(f.out, "file: accepted %s\n", o.Name)
		} else {
			o.Refuse("the expert refused it")
		}
	case "files":
		if err := f.exp.RequestFiles(ctx); err != nil {
			fmt.Fprintf(f.out, "files request not sent: %v\n", err)
			return
		}
		fmt.Fprintf(f.out, "files: asked %s to allow files\n", f.novice)
	case "cancel":
		for id := range f.mine {
			if c.arg == "" || c.arg == hex.EncodeToString(id[:]) {
				f.exp.CancelFile(id)
			}
		}
	}
}
