#!/usr/bin/env bash
# Sets up and runs the whole test suite: static checks, the race-enabled
# tests with libjpeg-turbo, and the codec tests with the pure-Go JPEG
# fallback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
export PATH=$PATH:/usr/local/go/bin:$(go env GOPATH)/bin
export ASSIST_BUILD_TAGS=turbojpeg

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
[ -z "$unformatted" ] || { echo "gofmt would change: $unformatted" >&2; exit 1; }
echo "== third-party licences up to date"
scripts/licenses.sh --check
echo "== go vet"
go vet -tags turbojpeg ./...
go vet ./...
echo "== windows build (no cgo) and installer"
windist=$(mktemp -d)
scripts/windows.sh 0.0.0 "$windist"
rm -rf "$windist"
GOOS=windows go vet ./screen/windows
echo "== staticcheck"
go tool staticcheck -tags turbojpeg ./...
echo "== go test -race (turbojpeg)"
go test -race -tags turbojpeg -timeout 30m ./...
echo "== go test (pure-Go JPEG)"
go test -timeout 10m ./rfb/...
