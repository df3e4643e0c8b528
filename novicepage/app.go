package novicepage

import (
	"encoding/base64"
	"fmt"
	"slices"

	qrcode "github.com/skip2/go-qrcode"
)

// App is the part of the page that only the novice's app (`assist` with no
// arguments, Options.App) shows: the way to get help and the contacts. The
// app replaces it whole with SetApp; it is sent inside every status message
// as "app", next to the invitation and the session the Status describes.
type App struct {
	// Account is the messenger account this device is logged in to ("" if
	// none: the app then only makes direct invitations).
	Account string `json:"account,omitempty"`
	// Server is the server of that account, where invitations go too.
	Server string `json:"server,omitempty"`
	// Online says whether the app is connected to that server now.
	Online bool `json:"online"`
	// Contacts are the account's contacts with their presence.
	Contacts []Contact `json:"contacts"`
	// Busy is set while an invitation or a session runs: Get help and Ask
	// for help wait until it is over.
	Busy bool `json:"busy"`
	// Asking is the contact whose answer the app waits for ("" if none).
	Asking string `json:"asking,omitempty"`
	// Last says, in plain words, how the last attempt ended ("" if none).
	Last string `json:"last,omitempty"`
}

// Contact is one contact as the app lists it.
type Contact struct {
	User    string `json:"user"`
	Display string `json:"display"`
	// State is "online", "busy", "away" or "offline".
	State string `json:"state"`
}

func (a App) clone() App {
	a.Contacts = slices.Clone(a.Contacts)
	return a
}

// qrSize is the QR image's side in pixels: large enough to scan from a
// screen across a desk.
const qrSize = 320

// QRDataURL returns a PNG of a QR code of text as a data: URL, for an
// <img> under the page's Content-Security-Policy (img-src data:). Medium
// error correction: a phone reads it off a screen with a reflection.
func QRDataURL(text string) (string, error) {
	png, err := qrcode.Encode(text, qrcode.Medium, qrSize)
	if err != nil {
		return "", fmt.Errorf("novicepage: QR code: %w", err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(png), nil
}
