// Package web holds the browser parts of Assist, embedded in the binary so
// `assist join` needs nothing but itself: the expert's viewer page and the
// parts of noVNC it loads.
//
// noVNC is not copied into the repository: it comes from npm (`npm ci
// --prefix web`, which the build scripts run before `go build`), so
// building this package without web/node_modules fails with "pattern
// ...: no matching files found". The build tag nonovnc leaves noVNC out
// (go install from the module proxy, whose zip has no node_modules):
// that binary works with VNC viewers, and HasNoVNC lets the commands say
// why the browser viewer is missing.
package web

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed viewer
var viewerFiles embed.FS

//go:embed session
var sessionFiles embed.FS

// Viewer returns the expert's viewer page: index.html (an html/template),
// its script and its style sheet.
func Viewer() fs.FS { return sub(viewerFiles, "viewer") }

// Session returns the expert's session view, shared by the viewer page
// and the web app: view.js, screen.js, scaled.js, words.js and session.css. Both
// serve it under session/ next to their page and noVNC under novnc/, so
// its relative import of ../novnc/core/rfb.js works for both.
func Session() fs.FS { return sub(sessionFiles, "session") }

// NoVNC returns noVNC's core/ and vendor/ directories and LICENSE.txt, laid
// out as in the npm package so core's relative imports of vendor/ work.
// Without noVNC (build tag nonovnc) the directories are empty.
func NoVNC() fs.FS { return sub(novncFiles, "node_modules/@novnc/novnc") }

// HasNoVNC reports whether noVNC is in this binary.
func HasNoVNC() bool { return novncEmbedded }

// NoVNCMissing is what a command says when HasNoVNC is false.
const NoVNCMissing = "this assist was built without the browser viewer (noVNC; go install builds it that way): " +
	"use a VNC viewer on the rfb address, or build assist from a clone with scripts/setup.sh (see README)"

func sub(f embed.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		// fs.Sub only fails on an invalid path, and these are constants.
		panic(fmt.Sprintf("web: %s: %v", dir, err))
	}
	return s
}
