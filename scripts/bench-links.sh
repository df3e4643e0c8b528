#!/usr/bin/env bash
# Compare assist with x11vnc and TigerVNC across emulated home links
# (issue 13), with the same client as scripts/bench.sh (Tight + CopyRect,
# JPEG quality 8, one update request outstanding).
#
#   sudo scripts/bench-links.sh [-links default] [-short]
#                               [-servers assist,x11vnc,tigervnc,session,webrtc,relay]
#                               [-workloads small,typing,video,fullscreen]
#                               [-duration 10s] [-lossless 5s] [-repeat 1] [-json out.json]
#
# Three network namespaces with unique names: the novice's, joined to the
# "internet" by an emulated link (bench/linkem: per direction rate, half
# the round trip as delay, loss, a drop-tail queue of twice the
# bandwidth-delay product; user space, because the kernel here has no
# sch_netem), and the expert's behind it. -links default is 20 Mbit/s with
# 40 ms RTT, 5 Mbit/s with 60 ms RTT, and 20 Mbit/s with 40 ms RTT losing
# 1% of packets each way (RATE/RTT[/LOSS%],... for others).
#
# Servers: assist (assist vnc), x11vnc and tigervnc (X0tigervnc) run in the
# novice's namespace on loopback, reached across the link through one
# forwarder each; session is `assist invite` to `assist join` directly
# (TLS over TCP); webrtc goes through `assist serve` (in the internet
# namespace) with a short code, and relay does the same with direct
# packets between the ends dropped, so WebRTC goes through the server's
# TURN. The viewer runs in the expert's namespace, on join's loopback port
# for the session paths.
#
# Per row: median latency of a change, display lag p95 (how long the
# viewer's picture had been out of date), markers shown, bytes on the link
# and at the viewer, CPU of the novice's server and of assist join, and
# the time for the still screen to become pixel-exact at the viewer after
# the last change ("never": not within -lossless).
#
# Needs root, iproute2, iptables, Xvfb, xfonts-base; x11vnc and
# tigervnc-scraping-server are skipped when missing. -short runs a few
# seconds per row (the smoke test's mode).
set -euo pipefail

cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "bench-links.sh: needs root (network namespaces and TUN devices)" >&2
	exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

tags=()
if [ -e /usr/include/turbojpeg.h ]; then
	tags=(-tags turbojpeg)
else
	echo "bench-links.sh: turbojpeg.h not found: building assist and the client with pure-Go JPEG" >&2
fi
go build "${tags[@]}" -o "$tmp/assist" ./cmd/assist
go build "${tags[@]}" -o "$tmp/rfbbench" ./bench/rfbbench

case " $* " in
*" -links "* | *" -links="*) "$tmp/rfbbench" -assist "$tmp/assist" "$@" ;;
*) "$tmp/rfbbench" -assist "$tmp/assist" -links default "$@" ;;
esac
