//go:build js && wasm

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall/js"
	"time"

	"github.com/assist-project/assist/filetransfer"
	"github.com/assist-project/assist/session"
	"github.com/assist-project/assist/transport/rtc/auth"
)

// Timeouts, as `assist join` has them.
const (
	// handshakeTimeout bounds the handshake inside an open channel.
	handshakeTimeout = 30 * time.Second
	// openTimeout bounds opening a display stream.
	openTimeout = 30 * time.Second
)

func main() {
	api := js.Global().Get("Object").New()
	// These two live as long as the page: never released.
	api.Set("parseCode", js.FuncOf(jsParseCode))
	api.Set("connect", js.FuncOf(jsConnect))
	// How many rectangles the newest display stream's relay received in
	// the private lossless encoding: for tests and the curious.
	api.Set("displayRelayed", js.FuncOf(func(js.Value, []js.Value) any {
		if rl := lastRelay.Load(); rl != nil {
			return rl.Rewritten()
		}
		return 0
	}))
	// How many scaled rectangles it passed to the page's noVNC.
	api.Set("displayPassed", js.FuncOf(func(js.Value, []js.Value) any {
		if rl := lastRelay.Load(); rl != nil {
			return rl.Passed()
		}
		return 0
	}))
	registerMessenger(api)
	js.Global().Set("assistExpert", api)
	// The program must outlive main's return to answer the page's calls.
	select {}
}

// jsError makes a JavaScript Error with the kind the page tells apart.
func jsError(err error) js.Value {
	e := js.Global().Get("Error").New(err.Error())
	e.Set("kind", errorKind(err))
	if left, ok := attemptsLeft(err); ok {
		e.Set("attemptsLeft", left)
	}
	return e
}

// promise runs f on a goroutine (a JavaScript callback must never block)
// and settles a Promise with its result.
func promise(f func() (any, error)) js.Value {
	var executor js.Func
	executor = js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			v, err := f()
			if err != nil {
				reject.Invoke(jsError(err))
			} else {
				resolve.Invoke(v)
			}
		}()
		// The Promise constructor calls the executor once, at once.
		executor.Release()
		return nil
	})
	return js.Global().Get("Promise").New(executor)
}

// jsParseCode: parseCode(text) -> {lookup} or {error}. (A Go callback
// cannot throw: the page checks .error.)
func jsParseCode(_ js.Value, args []js.Value) any {
	text := ""
	if len(args) > 0 && args[0].Type() == js.TypeString {
		text = args[0].String()
	}
	lookup, _, err := parseCode(text)
	if err != nil {
		return map[string]any{"error": jsError(err)}
	}
	return map[string]any{"lookup": lookup}
}

// jsConnect: connect(options) -> Promise<session>.
func jsConnect(_ js.Value, args []js.Value) any {
	var opts js.Value
	if len(args) > 0 {
		opts = args[0]
	}
	return promise(func() (any, error) {
		if opts.Type() != js.TypeObject {
			return nil, errors.New("connect needs an options object")
		}
		str := func(name string) string {
			if v := opts.Get(name); v.Type() == js.TypeString {
				return v.String()
			}
			return ""
		}
		onEvent := opts.Get("onEvent")
		if onEvent.Type() != js.TypeFunction {
			return nil, errors.New("connect needs an onEvent function")
		}
		// A session with a contact names its session id and the password
		// both devices derived (pairing.SessionSecret); otherwise the
		// code typed holds both.
		lookup, password := str("invitation"), str("password")
		if lookup == "" || password == "" {
			var err error
			if lookup, password, err = parseCode(str("code")); err != nil {
				return nil, err
			}
		}
		localFP, err := auth.SDPFingerprint(str("localDescription"))
		if err != nil {
			return nil, fmt.Errorf("%w: local: %w", errBadDescription, err)
		}
		remoteFP, err := auth.SDPFingerprint(str("remoteDescription"))
		if err != nil {
			return nil, fmt.Errorf("%w: remote: %w", errBadDescription, err)
		}
		conn, detach, err := attachChannel(opts.Get("channel"))
		if err != nil {
			return nil, err
		}
		// Closing the channel is the only way to stop a handshake that
		// waits for a peer gone quiet.
		timer := time.AfterFunc(handshakeTimeout, func() { conn.Close() })
		_, err = auth.Expert(conn, auth.Params{InvitationID: lookup, Password: password, Name: str("name")},
			auth.BindingContext(localFP, remoteFP))
		if !timer.Stop() {
			// The timer closed conn: even a handshake that just made it
			// has no channel left.
			cause := fmt.Errorf("no answer within %v", handshakeTimeout)
			if err != nil {
				cause = fmt.Errorf("%w: %w", cause, err)
			}
			err = &auth.HandshakeError{Kind: auth.ErrUnreachable, Stage: "pake", Cause: cause}
		}
		if err != nil {
			conn.Close()
			detach()
			return nil, err
		}
		if str("invitation") == "" {
			slog.Info("authenticated", "invitation", lookup)
		} else {
			// A contact session's id is its capability: never logged.
			slog.Info("authenticated with a contact")
		}
		exp := session.StartExpertConfig(conn, slog.Default(), session.ExpertConfig{FilesStore: store})
		s := &expertSession{exp: exp, files: files{offers: make(map[string]filetransfer.Offer)}}
		obj := s.object()
		go func() {
			var wg sync.WaitGroup
			wg.Go(func() { s.runFiles(onEvent) })
			for ev := range exp.Events() {
				onEvent.Invoke(eventObject(ev))
			}
			wg.Wait()
			// The session is over: the multiplexer has closed conn.
			conn.Close()
			detach()
			s.release()
		}()
		return obj, nil
	})
}

// eventObject is an ExpertEvent as the page's onEvent receives it.
func eventObject(ev session.ExpertEvent) map[string]any {
	switch {
	case ev.IsChat:
		return map[string]any{"type": "chat", "text": ev.Chat}
	case ev.State == session.Ended:
		return map[string]any{"type": "ended", "reason": ev.Reason}
	}
	return map[string]any{"type": "state", "state": ev.State.String(), "rights": ev.Rights.String(), "reason": ev.Reason}
}

// expertSession is an authenticated session as the page sees it.
type expertSession struct {
	exp   *session.Expert
	funcs []js.Func
	files files
}

func (s *expertSession) object() js.Value {
	o := js.Global().Get("Object").New()
	s.method(o, "openDisplay", func([]js.Value) any {
		return promise(func() (any, error) {
			ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
			defer cancel()
			c, err := s.exp.OpenDisplay(ctx)
			if err != nil {
				return nil, fmt.Errorf("open display: %w", err)
			}
			return newStream(relayed(c)).object(), nil
		})
	})
	s.method(o, "requestControl", func([]js.Value) any {
		return promise(func() (any, error) {
			return nil, s.exp.RequestControl(context.Background())
		})
	})
	s.method(o, "giveBackControl", func([]js.Value) any {
		return promise(func() (any, error) {
			return nil, s.exp.GiveBackControl(context.Background())
		})
	})
	s.method(o, "requestClipboard", func([]js.Value) any {
		return promise(func() (any, error) {
			return nil, s.exp.RequestClipboard(context.Background())
		})
	})
	s.method(o, "sendChat", func(args []js.Value) any {
		text := ""
		if len(args) > 0 && args[0].Type() == js.TypeString {
			text = args[0].String()
		}
		return promise(func() (any, error) {
			return nil, s.exp.SendChat(context.Background(), text)
		})
	})
	s.fileMethods(o)
	s.method(o, "leave", func([]js.Value) any {
		return promise(func() (any, error) {
			s.exp.Leave("the expert left")
			return nil, nil
		})
	})
	return o
}

func (s *expertSession) method(o js.Value, name string, f func(args []js.Value) any) {
	fn := js.FuncOf(func(_ js.Value, args []js.Value) any { return f(args) })
	s.funcs = append(s.funcs, fn)
	o.Set(name, fn)
}

// release frees the session's functions once it is over; a later call
// from the page only logs "call to released function" in the console.
func (s *expertSession) release() {
	for _, f := range s.funcs {
		f.Release()
	}
}
