package lab

import (
	"io"
	"net/http"
	"time"

	"github.com/assist-project/assist/server"
)

// GetPinned fetches url over HTTPS, accepting exactly the certificate with
// this fingerprint (sha256:HEX, as assist serve prints it) the way assist's
// clients do (server.PinnedTLSConfig), and returns the status and body.
// Each call has its own connection, so a test that stops a node never
// reuses one to a process that is gone.
func GetPinned(url, fingerprint string) (int, string, error) {
	tr := &http.Transport{TLSClientConfig: server.PinnedTLSConfig(fingerprint), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
