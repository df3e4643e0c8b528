// Package lab is the end-to-end test harness: it starts real X servers
// (Xvfb), draws known content on them, runs the assist binary and real VNC
// viewers (TigerVNC, vncsnapshot, gvncviewer, noVNC in headless Chromium)
// and reads back what they show.
//
// Every helper takes a testing.TB, registers its own t.Cleanup so nothing
// outlives the test, and skips the test with a clear reason when a tool it
// needs is not installed. The Debian packages are listed in the project's
// lab recipes: xvfb x11-utils x11-apps x11-xserver-utils xterm xfonts-base
// xdotool tigervnc-viewer vncsnapshot gvncviewer chromium; noVNC comes from
// `npm ci --prefix web`.
package lab
