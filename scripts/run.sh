#!/usr/bin/env bash
# Sets up, builds and runs assist: scripts/run.sh vnc --display :0
# ASSIST_BUILD_TAGS picks the cgo codecs (default "turbojpeg,openh264";
# "turbojpeg" alone builds without H.264).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH=$PATH:/usr/local/go/bin
mkdir -p bin
go build -tags "${ASSIST_BUILD_TAGS:-turbojpeg,openh264}" -o bin/assist ./cmd/assist
exec bin/assist "$@"
