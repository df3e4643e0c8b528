#!/usr/bin/env bash
# Compare assist's VNC server with x11vnc and TigerVNC (X0tigervnc) on the
# same Xvfb desktop, under the same workloads and with the same client.
#
#   scripts/bench.sh [-duration 10s] [-warmup 2s] [-json results.json]
#                    [-servers assist,x11vnc,tigervnc]
#                    [-workloads typing,scrolling,video,fullscreen]
#                    [-quality 8] [-compress 2] [-continuous]
#                    [-repeat 1] [-trace updates.csv] [-h264]
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
	tags=(turbojpeg)
else
	echo "bench.sh: turbojpeg.h not found: building assist and the client with pure-Go JPEG" >&2
fi
# H.264 (Open H.264, encoding 50) with openh264 (libopenh264-dev); the
# client offers it only with -h264.
if [ -e /usr/include/wels/codec_api.h ]; then
	tags+=(openh264)
else
	echo "bench.sh: wels/codec_api.h not found: building without H.264" >&2
fi
if [ ${#tags[@]} -gt 0 ]; then
	tags=(-tags "$(IFS=,; echo "${tags[*]}")")
fi
go build "${tags[@]}" -o "$tmp/assist" ./cmd/assist
go build "${tags[@]}" -o "$tmp/rfbbench" ./bench/rfbbench

"$tmp/rfbbench" -assist "$tmp/assist" "$@"
