//go:build js && wasm

package main

import (
	"errors"
	"fmt"
	"syscall/js"

	"github.com/assist-project/assist/cmd/assist-wasm/internal/dcconn"
)

// jsChannel is an RTCDataChannel as a dcconn.Channel.
type jsChannel struct{ dc js.Value }

// Send copies p into a new Uint8Array and sends it. RTCDataChannel.send
// throws when the channel is not open; that becomes an error.
func (c jsChannel) Send(p []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("data channel: send: %v", r)
		}
	}()
	u8 := js.Global().Get("Uint8Array").New(len(p))
	js.CopyBytesToJS(u8, p)
	c.dc.Call("send", u8)
	return nil
}

func (c jsChannel) BufferedAmount() int { return c.dc.Get("bufferedAmount").Int() }

func (c jsChannel) Close() { c.dc.Call("close") }

// attachChannel wraps dc, an open RTCDataChannel, in a net.Conn. detach
// removes the event listeners; call it once the Conn is closed and done
// with.
func attachChannel(dc js.Value) (conn *dcconn.Conn, detach func(), err error) {
	if dc.Type() != js.TypeObject || dc.Get("send").Type() != js.TypeFunction {
		return nil, nil, errors.New("channel is not an RTCDataChannel")
	}
	if state := dc.Get("readyState").String(); state != "open" {
		return nil, nil, fmt.Errorf("the data channel is %s, not open", state)
	}
	ch := jsChannel{dc: dc}
	c := dcconn.New(ch)
	dc.Set("binaryType", "arraybuffer")
	dc.Set("bufferedAmountLowThreshold", dcconn.LowWater)
	arrayBuffer, uint8Array := js.Global().Get("ArrayBuffer"), js.Global().Get("Uint8Array")
	handlers := map[string]js.Func{
		"message": js.FuncOf(func(_ js.Value, args []js.Value) any {
			data := args[0].Get("data")
			if !data.InstanceOf(arrayBuffer) {
				// Assist sends bytes only: a text message is not ours.
				c.Closed(errors.New("data channel: the peer sent a text message"))
				ch.Close()
				return nil
			}
			u8 := uint8Array.New(data)
			b := make([]byte, u8.Length())
			js.CopyBytesToGo(b, u8)
			c.Deliver(b)
			return nil
		}),
		"bufferedamountlow": js.FuncOf(func(js.Value, []js.Value) any {
			c.Drained()
			return nil
		}),
		"close": js.FuncOf(func(js.Value, []js.Value) any {
			c.Closed(nil)
			return nil
		}),
		"error": js.FuncOf(func(_ js.Value, args []js.Value) any {
			msg := "data channel failed"
			if e := args[0].Get("error"); e.Type() == js.TypeObject {
				msg += ": " + e.Get("message").String()
			}
			c.Closed(errors.New(msg))
			return nil
		}),
	}
	for name, f := range handlers {
		dc.Call("addEventListener", name, f)
	}
	detach = func() {
		for name, f := range handlers {
			dc.Call("removeEventListener", name, f)
			f.Release()
		}
	}
	return c, detach, nil
}
