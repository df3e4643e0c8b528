// Package web holds the browser parts of Assist, embedded in the binary so
// `assist join` needs nothing but itself: the expert's viewer page and the
// parts of noVNC it loads.
//
// noVNC is not copied into the repository: it comes from npm (`npm ci
// --prefix web`, which the build scripts run before `go build`), so
// building this package without web/node_modules fails with "pattern
// ...: no matching files found".
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

// Only what a page loads (the ES modules and the zlib port they import)
// and the licence that must travel with them; noVNC's own app, docs and
// tests stay out of the binary.
//
//go:embed node_modules/@novnc/novnc/core node_modules/@novnc/novnc/vendor node_modules/@novnc/novnc/LICENSE.txt
var novncFiles embed.FS

// Viewer returns the expert's viewer page: index.html (an html/template),
// its script and its style sheet.
func Viewer() fs.FS { return sub(viewerFiles, "viewer") }

// Session returns the expert's session view, shared by the viewer page
// and the web app: view.js, screen.js, words.js and session.css. Both
// serve it under session/ next to their page and noVNC under novnc/, so
// its relative import of ../novnc/core/rfb.js works for both.
func Session() fs.FS { return sub(sessionFiles, "session") }

// NoVNC returns noVNC's core/ and vendor/ directories and LICENSE.txt, laid
// out as in the npm package so core's relative imports of vendor/ work.
func NoVNC() fs.FS { return sub(novncFiles, "node_modules/@novnc/novnc") }

func sub(f embed.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		// fs.Sub only fails on an invalid path, and these are constants.
		panic(fmt.Sprintf("web: %s: %v", dir, err))
	}
	return s
}
