#!/usr/bin/env bash
# Compare assist's VNC server with x11vnc and TigerVNC (X0tigervnc) on the
# same Xvfb desktop, under the same workloads and with the same client.
#
#   scripts/bench.sh [-duration 10s] [-warmup 2s] [-json results.json]
#                    [-servers assist,x11vnc,tigervnc]
#                    [-workloads typing,scrolling,video,fullscreen]
#                    [-quality 8] [-compress 2] [-continuous]
#                    [-repeat 1] [-trace updates.csv]
#
# Needs Go, Xvfb (package xvfb) and the "fixed" font (xfonts-base); servers
# missing from PATH (x11vnc, X0tigervnc from tigervnc-scraping-server) are
# skipped with a message. Prints a Markdown table on stdout: with -repeat N,
# the servers are measured N times in turn and each figure is the median.
# -trace writes every drawn change and received update as CSV.
set -euo pipefail

cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# assist is built with libjpeg-turbo when its headers are there
# (libturbojpeg0-dev), as a release build would be; so is the benchmark's
# client, which then decodes JPEG as fast as real viewers do instead of
# with image/jpeg (several times slower, which would make JPEG-heavy
# latencies mostly the client's own). The JSON output records which.
tags=()
if [ -e /usr/include/turbojpeg.h ]; then
	tags=(-tags turbojpeg)
else
	echo "bench.sh: turbojpeg.h not found: building assist and the client with pure-Go JPEG" >&2
fi
go build "${tags[@]}" -o "$tmp/assist" ./cmd/assist
go build "${tags[@]}" -o "$tmp/rfbbench" ./bench/rfbbench

"$tmp/rfbbench" -assist "$tmp/assist" "$@"
