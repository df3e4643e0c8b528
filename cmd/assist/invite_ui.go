package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/filetransfer"
	"github.com/assist-project/assist/indicator"
	"github.com/assist-project/assist/novicepage"
	"github.com/assist-project/assist/session"
	"github.com/assist-project/assist/transport/rtc"
	"golang.org/x/term"
)

// noviceUI is the novice's two front ends for assist invite: the terminal
// (console keys in, lines out) and the local page (novicepage; nil with
// --no-page). Both show the same session and either may act: the first
// answer to a question settles it, and the other front end then shows it
// as answered.
type noviceUI struct {
	con  *console
	out  io.Writer
	page *novicepage.Server // nil without a page

	status    novicepage.Status // what the page shows; only runInvite's goroutine changes it
	lastQ     uint64            // the last question's ID on the page
	withdrawn bool              // the novice stopped assist invite (q, end, withdraw)
	// deniedView: the session ended because the novice said no to being
	// seen, or let that question go unanswered.
	deniedView bool

	stopPage func() // stops the page's server and waits for it

	filesDir string // where files from the expert are saved

	// email answers the app's Send by e-mail for the invitation being
	// served; nil on assist invite's page.
	email func(novicepage.Action)

	// triesLeft is the wrong codes the invitation still takes, as last
	// told to the novice.
	triesLeft int

	// ind is the frame and bar on the shared desktop; nil shows nothing.
	ind indicator.Indicator
	// checkEvery: ask "Still sharing with NAME?" after this long of
	// sharing, and end the session if nobody answers within
	// answerTimeout. 0 never asks.
	checkEvery, answerTimeout time.Duration

	// audit records the session being served (path changes; the
	// consent and files are recorded by the session's hooks).
	audit *audit.Recorder
}

// indicator is ui.ind, or Nop.
func (ui *noviceUI) indicator() indicator.Indicator {
	if ui.ind == nil {
		return indicator.Nop{}
	}
	return ui.ind
}

// startPage serves the novice's page on a free loopback port and returns
// its URL. The page runs until ui.closePage.
func (ui *noviceUI) startPage(ctx context.Context) (string, error) {
	// Files the novice picks on the page wait here to be sent (and sent
	// again, to resume); only this user can read them.
	upDir, err := os.MkdirTemp("", "assist-send-")
	if err != nil {
		return "", fmt.Errorf("a folder for files to send: %w", err)
	}
	page, err := novicepage.New(novicepage.Options{Logger: slog.Default(), UploadDir: upDir})
	if err != nil {
		os.RemoveAll(upDir)
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(upDir)
		return "", fmt.Errorf("listen on loopback: %w", err)
	}
	url := page.URL(ln)
	// Not under ctx: on SIGTERM the page should still hear why assist
	// invite stops before it goes.
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := page.Serve(ctx, ln); err != nil {
			slog.Warn("the novice's page stopped", "err", err)
		}
	})
	ui.page = page
	ui.stopPage = func() { cancel(); wg.Wait(); os.RemoveAll(upDir) }
	ui.publish()
	return url, nil
}

// closePage tells the page that the invitation is over, and why (err is
// what assist invite returns), and stops serving it.
func (ui *noviceUI) closePage(err error) {
	// The agent's page outlives each offer's session: the agent shows its
	// idle status next, never "this invitation is over".
	if ui.page == nil || ui.status.Agent {
		return
	}
	switch {
	case ui.withdrawn:
		ui.status.Reason = "you withdrew the invitation"
	case err != nil:
		ui.status.Reason = err.Error()
	default:
		ui.status.Reason = "assist invite stopped"
	}
	ui.status.Stopped = true
	ui.status.Question = nil
	ui.status.StillSharing = time.Time{}
	ui.publish()
	if ui.stopPage != nil { // nil: the app's page, which goes on
		ui.stopPage()
	}
}

// waiting shows that no expert is connected, and why the last one is not.
func (ui *noviceUI) waiting(reason string) {
	ui.status.Expert, ui.status.Path, ui.status.Detail = "", "", ""
	ui.status.State, ui.status.Reason, ui.status.Question = session.Waiting, reason, nil
	ui.status.StillSharing = time.Time{}
	ui.publish()
}

func (ui *noviceUI) publish() {
	if ui.page != nil {
		ui.page.SetStatus(ui.status)
	}
}

// pageActions is the page's clicks; nil (never ready) without a page.
func (ui *noviceUI) pageActions() <-chan novicepage.Action {
	if ui.page == nil {
		return nil
	}
	return ui.page.Actions()
}

func (ui *noviceUI) addChat(from string, mine bool, text string) {
	if ui.page != nil {
		ui.page.AddChat(from, mine, text)
	}
}

// openInBrowser shows the page in the desktop's browser, but only for a
// person at a terminal of a graphical session: scripts and tests get the
// URL on stdout instead, and over SSH xdg-open could start a text-mode
// browser on the very terminal the console uses.
func openInBrowser(stdout io.Writer, url string) {
	f, ok := stdout.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return
	}
	c := browserCommand(url) // browser_*.go
	if c == nil {
		return
	}
	// No output: it would land in the middle of the raw-mode terminal.
	if err := c.Start(); err != nil {
		slog.Debug("opening the browser failed", "cmd", c.Path, "err", err)
		return
	}
	go c.Wait()
}

// idleAction answers a click on the page while no expert is connected.
func idleAction(a novicepage.Action) {
	switch a.Kind {
	case novicepage.ActChat:
		a.Reply("Nobody is connected: your message was not sent.")
	case novicepage.ActEmail:
		a.Reply("Click Get help first: then you can send the invitation.")
	case novicepage.ActGetHelp, novicepage.ActAsk:
		a.Reply("You already have an invitation open. To start again, click Withdraw invitation first.")
	default:
		a.Reply("Nobody is connected yet.")
	}
}

// askingState is the state in which a question for right waits.
func askingState(right session.Rights) session.State {
	if right == session.RightControl {
		return session.ControlAsked
	}
	return session.Asking
}

func rightName(right session.Rights) string {
	if right == session.RightControl {
		return "control"
	}
	if right == session.RightClipboard {
		return "clipboard"
	}
	if right == session.RightFiles {
		return "files"
	}
	return "view"
}

// optionalRight reports the rights asked and toggled apart from the
// session's state: the clipboard and files.
func optionalRight(r session.Rights) bool {
	return r == session.RightClipboard || r == session.RightFiles
}

// optionalAsked reports whether the question for an optional right still
// waits.
func optionalAsked(nov *session.Novice, r session.Rights) bool {
	if r == session.RightFiles {
		return nov.FilesAsked()
	}
	return nov.ClipboardAsked()
}

// filesAnswered reports whether ev answers the expert's files question
// (or is the toggle, which settles it too).
func filesAnswered(ev session.Event) bool {
	return ev.Action == session.ActAllowFiles || ev.Action == session.ActDenyFiles || ev.Action == session.ActFiles
}

// filesLine is the terminal's line for the files right's new state.
func filesLine(allowed bool, dir string) string {
	if allowed {
		return "files: allowed both ways (files sent to you go to " + dir + "): press s to send a file, f to stop"
	}
	return "files: not allowed: press f to allow them"
}

// clipboardAnswered reports whether ev is the novice's answer to the
// expert's clipboard question, or the toggle, which settles it too.
func clipboardAnswered(ev session.Event) bool {
	return ev.Action == session.ActAllowClipboard || ev.Action == session.ActDenyClipboard || ev.Action == session.ActClipboard
}

// clipboardLine is the terminal's line for the clipboard's new state.
func clipboardLine(shared bool, helper string) string {
	if shared {
		return "clipboard: shared with " + helper + " (copy and paste work both ways): press c to stop sharing"
	}
	return "clipboard: not shared: press c to share it"
}

// maxPageTransfers is how many transfers the page lists.
const maxPageTransfers = 10

// showTransfer puts a file event on the page: each transfer is one line,
// updated in place.
func (ui *noviceUI) showTransfer(index map[filetransfer.ID]int, ev filetransfer.Event, expert string) {
	t := novicepage.Transfer{Name: ev.Name, Size: ev.Size, Done: ev.Done, State: string(ev.State),
		Incoming: ev.Incoming, Path: ev.Path, Reason: novicepage.Reason(ev.Reason, expert)}
	if i, ok := index[ev.ID]; ok {
		ui.status.Transfers[i] = t
	} else {
		if len(ui.status.Transfers) == maxPageTransfers {
			ui.status.Transfers = ui.status.Transfers[1:]
			for id, j := range index {
				if j == 0 {
					delete(index, id)
				} else {
					index[id] = j - 1
				}
			}
		}
		index[ev.ID] = len(ui.status.Transfers)
		ui.status.Transfers = append(ui.status.Transfers, t)
	}
	ui.publish()
}

// runSession runs the front ends of one session until it ends. It
// reports whether the novice asked to stop altogether. paths delivers the
// new path after each ICE restart (nil on the direct path).
func (ui *noviceUI) runSession(nov *session.Novice, expert string, paths <-chan rtc.PathChange) (quit bool) {
	out := ui.out
	var pending *session.Question
	var pendingID uint64
	// later holds questions that came while another was shown (the
	// clipboard question can come while control is asked): one at a time.
	var later []session.Question
	var show func(q session.Question)
	filesOn := false
	settle := func() {
		pending, pendingID = nil, 0
		ui.status.Question = nil
		ui.publish()
		for len(later) > 0 && pending == nil {
			q := later[0]
			later = later[1:]
			show(q)
		}
	}
	// The indicator on the desktop, and the check after a long time of
	// sharing: checkC fires when it is time to ask, answerC when the
	// question has waited too long.
	ind := ui.indicator()
	clicks := ind.Clicks()
	name := indicator.Name(expert)
	var shown indicator.State
	var checkT, answerT *time.Timer
	var checkC, answerC <-chan time.Time
	checking := false
	stopCheck := func() {
		if checkT != nil {
			checkT.Stop()
		}
		if answerT != nil {
			answerT.Stop()
		}
		checkC, answerC, checking = nil, nil, false
		ui.status.StillSharing = time.Time{}
	}
	defer stopCheck()
	armCheck := func() {
		if ui.checkEvery > 0 {
			checkT = time.NewTimer(ui.checkEvery)
			checkC = checkT.C
		}
	}
	refresh := func() {
		s := indicatorState(nov.State(), expert, checking)
		if s == shown {
			return
		}
		if err := ind.Show(s); err != nil {
			slog.Warn("the indicator on the screen could not be updated", "err", err)
		}
		shown = s
	}
	defer func() {
		if shown.Mode != indicator.Off {
			if err := ind.Show(indicator.State{}); err != nil {
				slog.Warn("the indicator on the screen could not be removed", "err", err)
			}
		}
	}()
	keepSharing := func(how string) {
		if answerT != nil {
			answerT.Stop()
		}
		answerC, checking = nil, false
		ui.status.StillSharing = time.Time{}
		fmt.Fprintf(out, "still sharing with %s (%s)\n", name, how)
		armCheck()
		refresh()
		ui.publish()
	}
	answer := func(allow bool) {
		if err := pending.Answer(allow); err != nil {
			fmt.Fprintf(out, "too late to answer: %v\n", err)
		}
		settle()
	}
	state := func(ev session.Event) {
		reason := novicepage.Reason(ev.Reason, expert)
		fmt.Fprintf(out, "state: %s%s\n", ev.To, reasonSuffix(reason))
		ui.status.State, ui.status.Reason = ev.To, reason
		if ev.Action == session.ActDenyView {
			ui.deniedView = true
		}
		// Only a move out of the question's own state settles it:
		// the control question may arrive before the "viewing"
		// event that preceded it.
		if pending != nil && ev.From == askingState(pending.Right) && !optionalRight(pending.Right) {
			settle()
		}
		if clip := nov.Clipboard(); clip != ui.status.Clipboard || clipboardAnswered(ev) {
			ui.status.Clipboard = clip
			if ev.To != session.Ended {
				fmt.Fprintln(out, clipboardLine(clip, expert))
			}
		}
		if pending != nil && pending.Right == session.RightClipboard && (clipboardAnswered(ev) || ev.To == session.Ended) {
			settle()
		}
		// The time of sharing counts from the first view.
		if !sharing(ev.To) {
			stopCheck()
		} else if checkC == nil && !checking {
			armCheck()
		}
		if files := nov.Files(); files != filesOn || filesAnswered(ev) {
			filesOn = files
			ui.status.Files = files
			if ev.To != session.Ended {
				fmt.Fprintln(out, filesLine(files, ui.filesDir))
			}
		}
		if pending != nil && pending.Right == session.RightFiles && (filesAnswered(ev) || ev.To == session.Ended) {
			settle()
		}
		refresh()
		ui.publish()
	}
	show = func(q session.Question) {
		if optionalRight(q.Right) && !optionalAsked(nov, q.Right) ||
			!optionalRight(q.Right) && nov.State() != askingState(q.Right) {
			return // settled before we got to it
		}
		if pending != nil {
			later = append(later, q)
			return
		}
		pending = &q
		ui.lastQ++
		pendingID = ui.lastQ
		ui.status.Question = &novicepage.Question{ID: pendingID, Right: rightName(q.Right),
			Via: q.Via, Warning: session.Warning, Deadline: q.Deadline}
		ui.publish()
		fmt.Fprintln(out, q.Text())
	}
	events := nov.Events()
	fileEvents := nov.FileEvents()
	progress := newFileProgress(out, false, expert)
	progress.words = func(r string) string { return novicepage.Reason(r, expert) }
	transfers := make(map[filetransfer.ID]int) // index in ui.status.Transfers
	ui.status.Transfers, ui.status.Files = nil, false
	for {
		select {
		case q := <-nov.Questions():
			show(q)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			state(ev)
			if ev.From == ev.To {
				continue // a right changed, not the state: its own line said so
			}
			switch ev.To {
			case session.Controlling:
				fmt.Fprintf(out, "%s controls your mouse and keyboard: press Esc to take control back, q to end the session\n", expert)
			case session.Viewing:
				fmt.Fprintf(out, "%s sees your screen: press q to end the session, m to send a message, c to share the clipboard, f to allow files\n", expert)
			}
		case pc, ok := <-paths:
			if !ok {
				paths = nil
				continue
			}
			// The path is for the log and the page's Details; the
			// novice hears only that a broken connection is back.
			if pc.Restart {
				slog.Info("rendezvous: connection resumed after an ICE restart", "expert", expert, "path", pc.Path)
				fmt.Fprintf(out, "the connection to %s is back\n", expert)
			} else {
				slog.Info("rendezvous: path changed", "expert", expert, "path", pc.Path)
			}
			ui.status.Detail = serverPathDetail(pc.Path)
			ui.audit.Path(ui.status.Detail)
			ui.publish()
		case fe, ok := <-fileEvents:
			if !ok {
				fileEvents = nil
				continue
			}
			progress.show(fe)
			ui.showTransfer(transfers, fe, expert)
		case text := <-nov.Chats():
			fmt.Fprintf(out, "%s: %s\n", expert, text)
			ui.addChat(expert, false, text)
		case k := <-ui.con.keys:
			switch k.kind {
			case 'y', 'n':
				switch {
				case pending != nil:
					answer(k.kind == 'y')
				case checking && k.kind == 'y':
					keepSharing("answered in the terminal")
				case checking:
					fmt.Fprintln(out, "you stopped sharing")
					nov.End("the novice stopped sharing")
				}
			case esc:
				if nov.State() == session.Controlling {
					nov.TakeBack()
				}
			case 'q':
				nov.End("the novice ended the session")
				quit = true
			case 'c':
				if err := nov.SetClipboard(!nov.Clipboard()); err != nil {
					fmt.Fprintf(out, "clipboard not changed: %v\n", err)
				}
			case 'f':
				if err := nov.SetFiles(!nov.Files()); err != nil {
					fmt.Fprintf(out, "files not changed: %v\n", err)
				}
			case 'S':
				fmt.Fprintln(out, "file to send (its path, then Enter):")
			case 's':
				if _, err := nov.SendFile(k.text); err != nil {
					if errors.Is(err, session.ErrNoFiles) {
						err = errors.New("files are not allowed: press f to allow them first")
					}
					fmt.Fprintf(out, "file not sent: %v\n", err)
				}
			case 'm':
				if err := nov.SendChat(k.text); err != nil {
					fmt.Fprintf(out, "message not sent: %v\n", err)
					continue
				}
				ui.addChat("you", true, k.text)
			}
		case a := <-ui.pageActions():
			if a.Kind == novicepage.ActKeepSharing {
				// The page's answer counts like the bar's and the
				// terminal's: whichever comes first.
				if !checking {
					a.Reply("That question was already answered.")
					continue
				}
				keepSharing("answered on the page")
				continue
			}
			if ui.pageAction(nov, a, pending, pendingID, answer) {
				quit = true
			}
		case c, ok := <-clicks:
			if !ok {
				clicks = nil
				continue
			}
			// The bar's buttons take the very paths of the terminal's
			// keys and the page's buttons.
			switch c {
			case indicator.TakeBack:
				if err := nov.TakeBack(); err != nil {
					fmt.Fprintf(out, "control not taken back: %v\n", err)
					continue
				}
				fmt.Fprintln(out, "control taken back on the screen's bar")
			case indicator.End:
				fmt.Fprintln(out, "session ended on the screen's bar")
				nov.End("the novice ended the session")
			case indicator.KeepSharing:
				if checking {
					keepSharing("answered on the screen's bar")
				}
			}
		case <-checkC:
			checkC = nil
			if !sharing(nov.State()) {
				continue
			}
			checking = true
			answerT = time.NewTimer(ui.answerTimeout)
			answerC = answerT.C
			ui.status.StillSharing = time.Now().Add(ui.answerTimeout)
			ui.publish()
			fmt.Fprintf(out, "Still sharing with %s? press y to keep sharing, n to stop (the session ends in %s if nobody answers)\n",
				name, session.Duration(ui.answerTimeout))
			refresh()
		case <-answerC:
			answerC = nil
			reason := fmt.Sprintf("nobody answered \"Still sharing with %s?\" within %s", name, session.Duration(ui.answerTimeout))
			fmt.Fprintf(out, "%s: ending the session\n", reason)
			nov.End(reason)
		case <-nov.Done():
			// The last events may still be queued: the novice must see
			// how and why the session ended.
			if events != nil {
				for ev := range events {
					state(ev)
				}
			}
			if pending != nil {
				settle()
			}
			progress.ended()
			return quit
		}
	}
}

// pageAction carries out one click on the page during a session and
// reports whether the novice withdrew the invitation.
func (ui *noviceUI) pageAction(nov *session.Novice, a novicepage.Action, pending *session.Question, pendingID uint64, answer func(bool)) (withdraw bool) {
	out := ui.out
	switch a.Kind {
	case novicepage.ActAnswer:
		if pending == nil || a.Question != pendingID {
			a.Reply("That question was already answered.")
			return false
		}
		verdict := "no"
		if a.Allow {
			verdict = "yes"
		}
		fmt.Fprintf(out, "answered on the page: %s\n", verdict)
		answer(a.Allow)
	case novicepage.ActTakeBack:
		if err := nov.TakeBack(); err != nil {
			a.Reply("Your helper does not have control.")
			return false
		}
		fmt.Fprintln(out, "control taken back on the page")
	case novicepage.ActEnd:
		fmt.Fprintln(out, "session ended on the page")
		nov.End("the novice ended the session")
	case novicepage.ActWithdraw:
		fmt.Fprintln(out, "invitation withdrawn on the page")
		nov.End("the novice withdrew the invitation")
		return true
	case novicepage.ActClipboard:
		if err := nov.SetClipboard(a.Allow); err != nil {
			a.Reply("The clipboard was not changed: the session is over.")
			return false
		}
		fmt.Fprintln(out, "clipboard changed on the page")
	case novicepage.ActEmail, novicepage.ActGetHelp, novicepage.ActAsk:
		ui.appAction(a)
	case novicepage.ActFiles:
		if err := nov.SetFiles(a.Allow); err != nil {
			a.Reply("Files were not changed: the session is over.")
			return false
		}
		fmt.Fprintln(out, "files changed on the page")
	case novicepage.ActSendFile:
		// A file picked on the page: sent like the terminal's s.
		if _, err := nov.SendFile(a.Path); err != nil {
			if errors.Is(err, session.ErrNoFiles) {
				a.Reply("Files are not allowed: click Allow files first.")
			} else {
				a.Reply("The file was not sent: " + err.Error())
			}
			return false
		}
		a.Reply("")
	case novicepage.ActChat:
		if err := nov.SendChat(a.Text); err != nil {
			a.Reply("Your message was not sent: " + err.Error())
			return false
		}
		fmt.Fprintf(out, "you: %s\n", a.Text)
		ui.addChat("you", true, a.Text)
	}
	return false
}

// appAction answers the app's own buttons while an invitation or a
// session runs.
func (ui *noviceUI) appAction(a novicepage.Action) {
	switch {
	case a.Kind == novicepage.ActEmail && ui.email != nil:
		ui.email(a)
	case a.Kind == novicepage.ActEmail:
		a.Reply("This invitation cannot be sent by e-mail from here: read out the code instead.")
	default:
		a.Reply("You already have an invitation open. To start again, click Withdraw invitation first.")
	}
}
