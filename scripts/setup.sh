#!/usr/bin/env bash
# Installs what assist needs on Debian: with "test", also what its test
# suite needs (X servers, reference VNC servers and viewers, Chromium,
# noVNC from npm). Safe to run again; skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

runtime=(libturbojpeg0-dev libopenh264-dev pkg-config)
testing=(xvfb xauth x11-utils x11-xserver-utils x11-apps xterm xfonts-base imagemagick xdotool
  x11vnc tigervnc-scraping-server tigervnc-viewer vncsnapshot gvncviewer xclip xsel wine wine64 gcc-mingw-w64-x86-64 wixl
  chromium chromium-driver netcat-openbsd iproute2 iptables nftables conntrack miniupnpd miniupnpc natpmpc coturn tinyproxy xdg-utils dbus-daemon postgresql haproxy)

want=("${runtime[@]}")
# noVNC, which the binary embeds for the browser viewer, comes from npm.
command -v npm >/dev/null || want+=(nodejs npm)
if [ "${1:-}" = test ]; then
  want+=("${testing[@]}")
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

if ! command -v go >/dev/null; then
  export PATH=$PATH:/usr/local/go/bin
fi
command -v go >/dev/null || { echo "setup: Go 1.26 is needed (https://go.dev/dl/), then run this again" >&2; exit 1; }

npm ci --prefix web --no-audit --no-fund --loglevel=error

# The tests' SMTP server (mailer, assist invite --email): a Go program,
# installed from the Go module proxy into $(go env GOPATH)/bin, where the
# tests look for it.
if [ "${1:-}" = test ] && ! [ -x "$(go env GOPATH)/bin/mailpit" ]; then
  go install github.com/axllent/mailpit@v1.33.1
fi

# The expert's web app that assist serve embeds: the Go program built as
# WebAssembly (gzipped: the server sends it as it is) and Go's loader for it.
wasm=$(mktemp)
trap 'rm -f "$wasm"' EXIT
GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o "$wasm" ./cmd/assist-wasm
gzip -9 -n -c "$wasm" > web/expert/assist.wasm.gz
cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" web/expert/wasm_exec.js
