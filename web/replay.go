package web

import (
	"embed"
	"io/fs"
)

//go:embed replay
var replayFiles embed.FS

// Replay returns the page of assist replay --browser (package
// replaypage): index.html and its script. The desktop is drawn by noVNC
// through session/screen.js, as in the expert's viewer.
func Replay() fs.FS { return sub(replayFiles, "replay") }
