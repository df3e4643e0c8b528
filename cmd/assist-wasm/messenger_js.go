//go:build js && wasm

package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"syscall/js"
	"time"

	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/pairing"
)

// callTimeout bounds one request to the messenger.
const callTimeout = 20 * time.Second

// registerMessenger adds the messenger's half of the API: the device key
// (api.device) and the messenger connection (api.messenger).
func registerMessenger(api js.Value) {
	dev := js.Global().Get("Object").New()
	// These live as long as the page: never released.
	dev.Set("newSeed", js.FuncOf(func(js.Value, []js.Value) any { return newSeed() }))
	dev.Set("publicKey", js.FuncOf(func(_ js.Value, args []js.Value) any {
		k, err := publicKey(argString(args, 0))
		return result("key", k, err)
	}))
	dev.Set("signPasskey", js.FuncOf(func(_ js.Value, args []js.Value) any {
		s, err := signPasskey(argString(args, 0), argString(args, 1))
		return result("sig", s, err)
	}))
	api.Set("device", dev)
	api.Set("messenger", js.FuncOf(jsMessenger))
	api.Set("linkDevice", js.FuncOf(jsLinkDevice))
}

func argString(args []js.Value, i int) string {
	if i < len(args) && args[i].Type() == js.TypeString {
		return args[i].String()
	}
	return ""
}

// result is {name: v} or {error} (a Go callback cannot throw).
func result(name, v string, err error) any {
	if err != nil {
		return map[string]any{"error": messengerError(err)}
	}
	return map[string]any{name: v}
}

// messengerError is an Error with .code: the server's error code
// ("unauthorized", "not-found", "taken", ...), "closed" when the
// connection is gone, else "failed".
func messengerError(err error) js.Value {
	e := js.Global().Get("Error").New(err.Error())
	code := "failed"
	var me *messenger.Error
	switch {
	case errors.As(err, &me):
		code = me.Code
		if me.Message != "" {
			e.Set("message", me.Message)
		}
	case errors.Is(err, messenger.ErrClosed):
		code = "closed"
	}
	e.Set("code", code)
	e.Set("kind", code)
	return e
}

// promiseJS is promise with messenger errors.
func promiseJS(f func() (any, error)) js.Value {
	var executor js.Func
	executor = js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			v, err := f()
			if err != nil {
				reject.Invoke(messengerError(err))
			} else {
				resolve.Invoke(v)
			}
		}()
		executor.Release()
		return nil
	})
	return js.Global().Get("Promise").New(executor)
}

// toJS turns a value into a plain JavaScript object through JSON: the
// page gets exactly the wire format (messenger.Message's members).
func toJS(v any) js.Value {
	b, err := json.Marshal(v)
	if err != nil {
		return js.Null()
	}
	return js.Global().Get("JSON").Call("parse", string(b))
}

// jsMessenger: messenger({seed, server, fingerprint, deviceName, onEvent,
// onClose}) -> Promise<client>. It logs in with the device key; a key the
// server does not know is refused ("unauthorized"): the page then signs in
// with a passkey, which enrols the key.
func jsMessenger(_ js.Value, args []js.Value) any {
	var opts js.Value
	if len(args) > 0 {
		opts = args[0]
	}
	return promiseJS(func() (any, error) {
		if opts.Type() != js.TypeObject {
			return nil, errors.New("messenger needs an options object")
		}
		str := func(name string) string {
			if v := opts.Get(name); v.Type() == js.TypeString {
				return v.String()
			}
			return ""
		}
		onEvent, onClose := opts.Get("onEvent"), opts.Get("onClose")
		if onEvent.Type() != js.TypeFunction || onClose.Type() != js.TypeFunction {
			return nil, errors.New("messenger needs onEvent and onClose functions")
		}
		key, err := deviceKey(str("seed"))
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		c, w, err := messenger.Dial(ctx, str("server"), str("fingerprint"), key, messenger.LoginOptions{DeviceName: str("deviceName")})
		if err != nil {
			return nil, err
		}
		m := &messengerClient{c: c}
		obj := m.object(w)
		m.addPairing(obj, key, w)
		m.addDeviceLink(obj, key, w)
		go func() {
		events:
			for {
				select {
				case ev, ok := <-c.Events():
					if !ok {
						break events
					}
					onEvent.Invoke(toJS(ev))
				case <-c.Done():
					break events
				}
			}
			why := ""
			if err := c.Err(); err != nil {
				why = err.Error()
			}
			onClose.Invoke(why)
			m.release()
		}()
		return obj, nil
	})
}

// messengerClient is a logged-in messenger connection as the page sees it.
type messengerClient struct {
	c     *messenger.Client
	funcs []js.Func
}

func (m *messengerClient) object(w messenger.Welcome) js.Value {
	o := js.Global().Get("Object").New()
	o.Set("user", w.User)
	o.Set("display", w.Display)
	o.Set("device", w.Device)
	call := func(name string, f func(ctx context.Context, args []js.Value) (any, error)) {
		m.method(o, name, func(args []js.Value) any {
			return promiseJS(func() (any, error) {
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				defer cancel()
				return f(ctx, args)
			})
		})
	}
	call("contacts", func(ctx context.Context, _ []js.Value) (any, error) {
		contacts, blocked, err := m.c.Contacts(ctx)
		if err != nil {
			return nil, err
		}
		if contacts == nil {
			contacts = []messenger.Contact{}
		}
		if blocked == nil {
			blocked = []string{}
		}
		return toJS(map[string]any{"contacts": contacts, "blocked": blocked}), nil
	})
	call("devices", func(ctx context.Context, _ []js.Value) (any, error) {
		d, err := m.c.Devices(ctx)
		if err != nil {
			return nil, err
		}
		if d == nil {
			d = []messenger.OwnDevice{}
		}
		return toJS(d), nil
	})
	call("removeDevice", func(ctx context.Context, args []js.Value) (any, error) {
		return nil, m.c.RemoveDevice(ctx, argString(args, 0))
	})
	call("setState", func(ctx context.Context, args []js.Value) (any, error) {
		return nil, m.c.SetState(ctx, argString(args, 0))
	})
	call("remove", func(ctx context.Context, args []js.Value) (any, error) {
		return nil, m.c.Remove(ctx, argString(args, 0))
	})
	call("block", func(ctx context.Context, args []js.Value) (any, error) {
		return nil, m.c.Block(ctx, argString(args, 0))
	})
	call("unblock", func(ctx context.Context, args []js.Value) (any, error) {
		return nil, m.c.Unblock(ctx, argString(args, 0))
	})
	call("ask", func(ctx context.Context, args []js.Value) (any, error) {
		r, err := m.c.Ask(ctx, argString(args, 0), argString(args, 1))
		if err != nil {
			return nil, err
		}
		return toJS(r), nil
	})
	call("answer", func(ctx context.Context, args []js.Value) (any, error) {
		accept := len(args) > 1 && args[1].Type() == js.TypeBoolean && args[1].Bool()
		r, err := m.c.Answer(ctx, argString(args, 0), accept)
		if err != nil {
			return nil, err
		}
		return toJS(r), nil
	})
	call("machines", func(ctx context.Context, _ []js.Value) (any, error) {
		ms, err := m.c.Machines(ctx)
		if err != nil {
			return nil, err
		}
		if ms == nil {
			ms = []messenger.Machine{}
		}
		return toJS(ms), nil
	})
	// The organisation's audit trail, for its admins: every page of the
	// search, read and worded by package audit as assist audit --org
	// does, with the CSV and JSON exports made here so the page only
	// turns them into downloads.
	call("auditSearch", func(ctx context.Context, args []js.Value) (any, error) {
		var since time.Time
		if s := argString(args, 1); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return nil, fmt.Errorf("since %q is not a time: %w", s, err)
			}
			since = t
		}
		return auditSearch(ctx, m.c, argString(args, 0), since, argString(args, 2))
	})
	call("auditVerify", func(ctx context.Context, args []js.Value) (any, error) {
		chains, err := m.c.AuditVerify(ctx, argString(args, 0))
		if err != nil {
			return nil, err
		}
		if chains == nil {
			chains = []messenger.AuditChain{}
		}
		return toJS(chains), nil
	})
	call("cancel", func(ctx context.Context, args []js.Value) (any, error) {
		return nil, m.c.Cancel(ctx, argString(args, 0))
	})
	m.method(o, "close", func([]js.Value) any {
		// Close waits for the connection's goroutines, which wait for
		// the browser's WebSocket events: never from inside a callback.
		go m.c.Close()
		return nil
	})
	return o
}

func (m *messengerClient) method(o js.Value, name string, f func(args []js.Value) any) {
	fn := js.FuncOf(func(_ js.Value, args []js.Value) any { return f(args) })
	m.funcs = append(m.funcs, fn)
	o.Set(name, fn)
}

// release frees the client's functions once its connection is over.
func (m *messengerClient) release() {
	for _, f := range m.funcs {
		f.Release()
	}
}

// pairTimeout bounds a contact pairing: a code is valid 10 minutes.
const pairTimeout = 10 * time.Minute

// contactObject is a contact the pairing exchange confirmed, as the page
// pins it: {user, display, key, fingerprint}.
func contactObject(peer pairing.Info) js.Value {
	return toJS(map[string]string{"user": peer.User, "display": peer.Display,
		"key": base64.RawURLEncoding.EncodeToString(peer.Key), "fingerprint": messenger.KeyFingerprint(peer.Key)})
}

// addPairing adds contactInvite(onCode) and contactAdd(code): both resolve
// with the contact the exchange confirmed, once the server has recorded
// it; the page pins its key. As `assist contacts invite` / `add` do
// (package account, which keeps its pins in files, not in a browser).
func (m *messengerClient) addPairing(o js.Value, key ed25519.PrivateKey, w messenger.Welcome) {
	me := pairing.Info{Key: key.Public().(ed25519.PublicKey), User: w.User, Display: w.Display}
	run := func(ctx context.Context, p *messenger.Pair, role pairing.Role, code pairing.Code) (any, error) {
		claimed, err := p.Peer(ctx)
		if err != nil {
			return nil, fmt.Errorf("waiting for the other person: %w", err)
		}
		peer, err := pairing.Run(ctx, p, role, code.Secret, code.PairID, pairing.PurposeContact, me)
		if err != nil {
			return nil, err
		}
		// The exchange proves the key and the name the peer gave; the
		// server records the contact under the name it knows.
		if peer.User != claimed.User {
			return nil, fmt.Errorf("the server says the other person is %q but they say %q: not added; try again", claimed.User, peer.User)
		}
		if peer.User == w.User {
			return nil, errors.New("that code is from your own account")
		}
		r, err := p.Done(ctx, peer.Key, nil)
		if err != nil {
			return nil, fmt.Errorf("the server did not record the contact: %w", err)
		}
		if r.User != peer.User {
			return nil, fmt.Errorf("the server recorded a contact %q, not %q", r.User, peer.User)
		}
		return contactObject(peer), nil
	}
	m.method(o, "contactInvite", func(args []js.Value) any {
		var onCode js.Value
		if len(args) > 0 {
			onCode = args[0]
		}
		return promiseJS(func() (any, error) {
			if onCode.Type() != js.TypeFunction {
				return nil, errors.New("contactInvite needs an onCode function")
			}
			ctx, cancel := context.WithTimeout(context.Background(), pairTimeout)
			defer cancel()
			p, err := m.c.PairOpen(ctx, messenger.PurposeContact)
			if err != nil {
				return nil, err
			}
			defer p.Close()
			code, err := pairing.NewCode(p.ID)
			if err != nil {
				return nil, err
			}
			onCode.Invoke(code.String())
			return run(ctx, p, pairing.Opener, code)
		})
	})
	m.method(o, "contactAdd", func(args []js.Value) any {
		text := argString(args, 0)
		return promiseJS(func() (any, error) {
			code, err := pairing.ParseCode(text)
			if err != nil {
				return nil, err
			}
			ctx, cancel := context.WithTimeout(context.Background(), pairTimeout)
			defer cancel()
			p, err := m.c.PairJoin(ctx, code.PairID, messenger.PurposeContact)
			if err != nil {
				if messenger.IsCode(err, messenger.CodeNotFound) {
					return nil, fmt.Errorf("no contact code %s is waiting: it expired (10 minutes), was used already, or was mistyped; ask for a new one", code)
				}
				return nil, err
			}
			defer p.Close()
			return run(ctx, p, pairing.Joiner, code)
		})
	})
	// sessionSecret({user, key, pinned, devices, session}) -> {password}
	// or {error}: the password of a session with a contact's device, if
	// its key is pinned here or chains by certificates to a pinned key.
	m.method(o, "sessionSecret", func(args []js.Value) any {
		if len(args) == 0 || args[0].Type() != js.TypeObject {
			return map[string]any{"error": messengerError(errors.New("sessionSecret needs an options object"))}
		}
		pw, err := sessionSecret(key, jsonOf(args[0]))
		return result("password", pw, err)
	})
	// orgSessionSecret({key, session}) -> {password} or {error}: the
	// password of a session with a machine of an organisation this
	// account helps, whose key the organisation's server names (the page
	// calls it only for a machine it offered from the machines list).
	m.method(o, "orgSessionSecret", func(args []js.Value) any {
		if len(args) == 0 || args[0].Type() != js.TypeObject {
			return map[string]any{"error": messengerError(errors.New("orgSessionSecret needs an options object"))}
		}
		pw, err := orgSessionSecret(key, jsonOf(args[0]))
		return result("password", pw, err)
	})
}

// jsonOf reads a JavaScript value through JSON.
func jsonOf(v js.Value) []byte {
	return []byte(js.Global().Get("JSON").Call("stringify", v).String())
}

// addDeviceLink adds deviceCode(onCode) on a signed-in client: it opens a
// device link, shows its code, runs the exchange with the browser or
// computer that enters it, certifies that device's key with this one
// (pairing.SignDevice) and resolves with {device, display} once the server
// has added it. As `assist devices add` does.
func (m *messengerClient) addDeviceLink(o js.Value, key ed25519.PrivateKey, w messenger.Welcome) {
	me := pairing.Info{Key: key.Public().(ed25519.PublicKey), User: w.User, Display: w.Display}
	m.method(o, "deviceCode", func(args []js.Value) any {
		var onCode js.Value
		if len(args) > 0 {
			onCode = args[0]
		}
		return promiseJS(func() (any, error) {
			if onCode.Type() != js.TypeFunction {
				return nil, errors.New("deviceCode needs an onCode function")
			}
			ctx, cancel := context.WithTimeout(context.Background(), pairTimeout)
			defer cancel()
			p, err := m.c.PairOpen(ctx, messenger.PurposeDevice)
			if err != nil {
				return nil, err
			}
			defer p.Close()
			code, err := pairing.NewCode(p.ID)
			if err != nil {
				return nil, err
			}
			onCode.Invoke(code.String())
			if _, err := p.Peer(ctx); err != nil {
				return nil, fmt.Errorf("waiting for the other device: %w", err)
			}
			peer, err := pairing.Run(ctx, p, pairing.Opener, code.Secret, code.PairID, pairing.PurposeDevice, me)
			if err != nil {
				return nil, err
			}
			if peer.User != w.User {
				return nil, fmt.Errorf("the other device asks for account %q, not %q: not adding it", peer.User, w.User)
			}
			r, err := p.Done(ctx, peer.Key, pairing.SignDevice(key, w.User, peer.Key))
			if err != nil {
				return nil, fmt.Errorf("the server did not add the device: %w", err)
			}
			return toJS(map[string]string{"device": r.Device, "fingerprint": messenger.KeyFingerprint(peer.Key)}), nil
		})
	})
}

// jsLinkDevice: linkDevice({seed, server, fingerprint, user, deviceName,
// code, replace}) -> Promise<{device}>. A browser that signed in with a
// passkey is a device no other device vouched for; this makes it one: a
// new device key (seed) joins the account through the device link of code
// (made by deviceCode or `assist devices add` on a confirmed device),
// which certifies it, and then the unvouched device (replace, its id) is
// removed. The page keeps the new seed.
func jsLinkDevice(_ js.Value, args []js.Value) any {
	var opts js.Value
	if len(args) > 0 {
		opts = args[0]
	}
	return promiseJS(func() (any, error) {
		if opts.Type() != js.TypeObject {
			return nil, errors.New("linkDevice needs an options object")
		}
		str := func(name string) string {
			if v := opts.Get(name); v.Type() == js.TypeString {
				return v.String()
			}
			return ""
		}
		key, err := deviceKey(str("seed"))
		if err != nil {
			return nil, err
		}
		code, err := pairing.ParseCode(str("code"))
		if err != nil {
			return nil, err
		}
		user := str("user")
		me := pairing.Info{Key: key.Public().(ed25519.PublicKey), User: user, Display: user}
		ctx, cancel := context.WithTimeout(context.Background(), pairTimeout)
		defer cancel()
		c, w, err := messenger.Dial(ctx, str("server"), str("fingerprint"), key, messenger.LoginOptions{
			User: user, DeviceName: str("deviceName"), Code: code.PairID,
			Link: func(ctx context.Context, p *messenger.Pair) (ed25519.PublicKey, error) {
				peer, err := pairing.Run(ctx, p, pairing.Joiner, code.Secret, code.PairID, pairing.PurposeDevice, me)
				if err != nil {
					return nil, err
				}
				if peer.User != user {
					return nil, fmt.Errorf("the device that made this code belongs to %q, not %q", peer.User, user)
				}
				return peer.Key, nil
			},
		})
		if err != nil {
			if messenger.IsCode(err, messenger.CodeNotFound) {
				return nil, fmt.Errorf("no device code %s is waiting: it expired (10 minutes), was used already, or was mistyped; make a new one", code)
			}
			return nil, err
		}
		defer c.Close()
		if old := str("replace"); old != "" {
			if err := c.RemoveDevice(ctx, old); err != nil {
				return nil, fmt.Errorf("this browser is confirmed, but its unconfirmed entry could not be removed (remove it under Your devices): %w", err)
			}
		}
		return toJS(map[string]string{"device": w.Device}), nil
	})
}
