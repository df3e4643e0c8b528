package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/assist-project/assist/filetransfer"
	"github.com/assist-project/assist/session"
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

var (
	joinStdinOnce sync.Once
	joinStdin     chan joinCommand
)

// joinCommands reads assist join's commands from stdin, one per line. The
// reader lives as long as the process (a read of stdin cannot be
// cancelled), so it is started once and shared by every session.
func joinCommands() <-chan joinCommand {
	joinStdinOnce.Do(func() {
		joinStdin = make(chan joinCommand, 8)
		go readJoinCommands(os.Stdin, joinStdin)
	})
	return joinStdin
}

func readJoinCommands(in io.Reader, out chan<- joinCommand) {
	s := bufio.NewScanner(in)
	for s.Scan() {
		verb, arg, _ := strings.Cut(strings.TrimSpace(s.Text()), " ")
		verb = strings.ToLower(verb)
		switch verb {
		case "send", "accept", "refuse", "files", "cancel", "y", "n":
			out <- joinCommand{verb: verb, arg: strings.TrimSpace(arg)}
		}
	}
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
}

func newExpertFiles(exp *session.Expert, out io.Writer, novice string, opts expertOptions) *expertFiles {
	tty := false
	if f, ok := out.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &expertFiles{exp: exp, out: out, novice: novice, dir: opts.FilesDir,
		toSend: append([]string(nil), opts.Send...), mine: make(map[filetransfer.ID]bool),
		progress: newFileProgress(out, tty, novice)}
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
		if len(f.offers) == 0 {
			fmt.Fprintln(f.out, "no file waits for an answer")
			return
		}
		o := f.offers[0]
		f.offers = f.offers[1:]
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
			f.exp.CancelFile(id)
		}
	}
}
