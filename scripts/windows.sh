#!/usr/bin/env bash
# Builds the Windows release: assist.exe (pure Go, no cgo: JPEG falls back
# to image/jpeg) and the installer assist-VERSION.msi (wixl, Debian's
# package wixl), into DIR.
#   scripts/windows.sh VERSION DIR
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: scripts/windows.sh VERSION DIR (VERSION like 1.2.3)}
dir=${2:?usage: scripts/windows.sh VERSION DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=$version" -o "$dir/assist.exe" ./cmd/assist
# wixl takes Source paths relative to its working directory only.
(cd "$dir" && wixl -a x64 -D Version="$version" -D Exe=assist.exe -o "assist-$version.msi" "$OLDPWD/packaging/windows/assist.wxs")
echo "$dir/assist.exe"
echo "$dir/assist-$version.msi"
