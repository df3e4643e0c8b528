package filetransfer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxSaved bounds a sanitised name in bytes, leaving room for " (999)"
// under the 255 bytes most file systems allow.
const maxSaved = 200

// unsafeRune reports runes that must never reach a file name or a line
// shown to a person: control characters (C0, DEL, C1), bidirectional
// overrides and isolates (which make "gpj.exe" read as "exe.jpg"), line
// and paragraph separators, and the replacement character that stands
// for invalid UTF-8.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r < 0xa0:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	case r == 0x2028, r == 0x2029, r == utf8.RuneError, r == 0xfeff:
		return true
	}
	return false
}

// SanitizeName turns the name a peer offered into a safe name for a file
// in the receiving folder: only the last element of any path (either
// slash), no control or bidirectional characters, none of the characters
// Windows reserves, no leading dots (no hidden files, no "..") or
// spaces, no trailing dots or spaces, not a Windows device name, at most
// 200 bytes with the extension kept. What is left empty becomes "file".
func SanitizeName(name string) string {
	name = strings.ToValidUTF8(name, "_")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		switch {
		case unsafeRune(r):
			return -1
		case strings.ContainsRune(`<>:"|?*`, r):
			return '_'
		}
		return r
	}, name)
	name = strings.TrimLeft(name, ". ")
	name = strings.TrimRight(name, ". ")
	if name == "" {
		return "file"
	}
	stem, ext := splitExt(name)
	if isDeviceName(stem) {
		stem = "_" + stem
	}
	if len(ext) > 32 {
		stem, ext = stem+ext, ""
	}
	stem = strings.TrimRight(clip(stem, maxSaved-len(ext)), ". ")
	if stem == "" {
		stem = "file"
	}
	return stem + ext
}

// splitExt splits "report.pdf" into "report" and ".pdf", keeping the
// usual double extensions whole ("backup" and ".tar.gz").
func splitExt(name string) (stem, ext string) {
	lower := strings.ToLower(name)
	for _, d := range []string{".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst"} {
		if strings.HasSuffix(lower, d) && len(name) > len(d) {
			return name[:len(name)-len(d)], name[len(name)-len(d):]
		}
	}
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return name, ""
	}
	return name[:i], name[i:]
}

// isDeviceName reports the names Windows gives to devices, whatever the
// extension ("NUL.txt" is the device too).
func isDeviceName(stem string) bool {
	s := strings.ToUpper(strings.TrimRight(stem, " "))
	switch s {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(s) == 4 && (strings.HasPrefix(s, "COM") || strings.HasPrefix(s, "LPT")) && s[3] >= '0' && s[3] <= '9' {
		return true
	}
	return false
}

// numbered is the n-th name tried for a file called name: the name
// itself, then "report (2).pdf", "report (3).pdf", ...
func numbered(name string, n int) string {
	if n <= 1 {
		return name
	}
	stem, ext := splitExt(name)
	return fmt.Sprintf("%s (%d)%s", stem, n, ext)
}
