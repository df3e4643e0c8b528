#!/usr/bin/env bash
# Sets up and runs the whole test suite: static checks, the race-enabled
# tests with libjpeg-turbo and openh264, and the codec tests with the
# pure-Go JPEG fallback and without H.264.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
export PATH=$PATH:/usr/local/go/bin:$(go env GOPATH)/bin
export ASSIST_BUILD_TAGS=turbojpeg,openh264

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
[ -z "$unformatted" ] || { echo "gofmt would change: $unformatted" >&2; exit 1; }
echo "== third-party licences up to date"
scripts/licenses.sh --check
echo "== go vet"
go vet -tags turbojpeg,openh264 ./...
go vet ./...
echo "== windows build (no cgo) and installer"
windist=$(mktemp -d)
scripts/windows.sh 0.0.0 "$windist"
rm -rf "$windist"
GOOS=windows go vet ./screen/windows
echo "== staticcheck"
go tool staticcheck -tags turbojpeg,openh264 ./...
echo "== go test -race (turbojpeg, openh264)"
go test -race -tags turbojpeg,openh264 -timeout 30m ./...
echo "== go test (pure-Go JPEG, no H.264)"
go test -timeout 10m ./rfb/... ./h264/...
