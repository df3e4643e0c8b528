// Package lab is the end-to-end test harness: it starts real X servers
// (Xvfb), draws known content on them, runs the assist binary and real VNC
// viewers (TigerVNC, vncsnapshot, gvncviewer, noVNC in headless Chromium)
// and reads back what they show.
//
// Every helper takes a testing.TB, registers its own t.Cleanup so nothing
// outlives the test, and skips the test with a clear reason when a tool it
// needs is not installed.
//
// # Running the end-to-end tests
//
// Debian packages (as root):
//
//	apt-get install -y --no-install-recommends xvfb x11-utils x11-apps \
//	  x11-xserver-utils xterm xfonts-base xdotool tigervnc-viewer \
//	  vncsnapshot gvncviewer chromium
//
// The Windows tests (screen/windows, cmd/assist's *UnderWine) run the
// Windows build under Wine and skip without it:
//
//	apt-get install -y --no-install-recommends wine wine64 \
//	  gcc-mingw-w64-x86-64 xclip wixl
//
// (MinGW builds internal/lab/winestub into each prefix for Wine 8, which
// lacks the ProcessPrng that Go programs need; wixl builds the MSI.)
//
// The novice's app's tests read its QR code with zbarimg, open links with
// xdg-open and check desktop entries with desktop-file-validate:
//
//	apt-get install -y --no-install-recommends zbar-tools xdg-utils \
//	  desktop-file-utils
//
// Several `assist serve` nodes behind a load balancer (StartCluster,
// StartHAProxy; cmd/assist's TestCluster* with internal/pgtest and
// internal/natstest) need Debian's HAProxy and PostgreSQL:
//
//	apt-get install -y --no-install-recommends haproxy postgresql
//
// noVNC (the noVNC subtest skips without it):
//
//	npm ci --prefix web
//
// Then:
//
//	go test ./cmd/assist/            # builds ./cmd/assist once per run
//	go test -short ./...             # skips everything that starts X
//
// Environment:
//   - ASSIST_BUILD_TAGS: build tags for the binary under test ("turbojpeg").
//   - ASSIST_E2E_ARTIFACTS: a directory; failed picture comparisons write
//     the expected and the viewer's picture there as PNG.
//   - ASSIST_E2E_SERVER: x11vnc or X0tigervnc runs that reference server in
//     place of `assist vnc` (packages x11vnc, tigervnc-scraping-server),
//     to check the harness or compare; unset, the tests run assist.
package lab
