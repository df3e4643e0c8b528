//go:build nonovnc

package web

import "embed"

// novncFiles is empty: built with the tag nonovnc, for a source tree
// without web/node_modules (a module zip from the Go module proxy).
var novncFiles embed.FS

const novncEmbedded = false
