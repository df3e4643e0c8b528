#!/usr/bin/env bash
# Sets up, builds and runs assist: scripts/run.sh vnc --display :0
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH=$PATH:/usr/local/go/bin
mkdir -p bin
go build -tags turbojpeg -o bin/assist ./cmd/assist
exec bin/assist "$@"
