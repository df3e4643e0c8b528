//go:build !nonovnc

package web

import "embed"

// Only what a page loads (the ES modules and the zlib port they import)
// and the licence that must travel with them; noVNC's own app, docs and
// tests stay out of the binary.
//
//go:embed node_modules/@novnc/novnc/core node_modules/@novnc/novnc/vendor node_modules/@novnc/novnc/LICENSE.txt
var novncFiles embed.FS

const novncEmbedded = true
