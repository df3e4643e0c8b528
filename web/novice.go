package web

import (
	"embed"
	"io/fs"
)

//go:embed novice
var noviceFiles embed.FS

// Novice returns the novice's page (package novicepage): index.html, its
// script and its style sheet. It loads nothing from anywhere else.
func Novice() fs.FS { return sub(noviceFiles, "novice") }
