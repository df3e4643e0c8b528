#!/usr/bin/env bash
# Probe a fresh rendezvous server the way an attacker on one address would,
# and print what it gets: idle connections one address can hold (and the
# server's memory), legitimate pairings during that flood, live codes found
# in a minute from one address, whether a held code blocks a real join,
# registrations accepted from one address in 10 s (and still stored after),
# and TURN credentials for a self-pairing.
#
#   scripts/abuse.sh [-json results.json] [-probes flood,harvest,held,register,turn]
#                    [-flood 3000] [-legit 20] [-live 20] [-harvest-time 60s]
#                    [-hold-mode stall|silent|garbage] [-held-budget 45s]
#                    [-register-time 10s] [-stored-wait 3s] [-v]
#
# Everything runs on this machine: the server listens on 127.0.0.1 with a
# temporary --data directory, and the probes' clients use loopback source
# addresses (127.0.0.1 to 127.0.0.14, 127.0.1.X and 127.0.2.X). Every probe
# is bounded in count and time; the whole run takes about 3 minutes, less
# when the server gives codes away quickly. The server is stopped and its
# data removed on exit, whatever happens. The held-code probe runs a real
# `assist invite` on an Xvfb display and a real `assist join`; without Xvfb
# it is skipped with the reason. Run `go run ./bench/abuse -h` for every
# option. Figures go to stdout, one line each ("WHAT: FIGURE (target:
# TARGET)", details indented below); progress goes to stderr.
set -euo pipefail

# Paths in the options (-json) are the caller's.
caller=$PWD
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
server_pid=
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -INT "$server_pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tags=()
if [ -e /usr/include/turbojpeg.h ]; then
	tags=(-tags turbojpeg)
fi
echo "abuse.sh: building assist and the probe" >&2
go build "${tags[@]}" -o "$tmp/assist" ./cmd/assist
go build -o "$tmp/abuse" ./bench/abuse

# The flood holds thousands of connections: the server and the probe each
# need a descriptor per connection.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -m 0700 "$tmp/data"
"$tmp/assist" serve --listen 127.0.0.1:0 --data "$tmp/data" \
	--turn-listen 127.0.0.1:0 --turns-listen 127.0.0.1:0 \
	>"$tmp/serve.out" 2>"$tmp/serve.log" </dev/null &
server_pid=$!

url= fp=
for _ in $(seq 100); do
	url=$(sed -n 's/^listening on \(https:\/\/[^ ]*\)$/\1/p' "$tmp/serve.out")
	fp=$(sed -n 's/^fingerprint: \(sha256:[0-9a-fA-F]*\)$/\1/p' "$tmp/serve.out")
	if [ -n "$url" ] && [ -n "$fp" ]; then
		break
	fi
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "abuse.sh: assist serve exited:" >&2
		cat "$tmp/serve.log" >&2
		exit 1
	fi
	sleep 0.2
done
if [ -z "$url" ] || [ -z "$fp" ]; then
	echo "abuse.sh: assist serve printed no URL and fingerprint in 20 s" >&2
	exit 1
fi
echo "abuse.sh: server $url (pid $server_pid), data in $tmp/data" >&2

# The probe stops by itself; the timeout is only a backstop
# (ABUSE_MAX_SECONDS, default 600: raise it with a long -stored-wait).
status=0
(cd "$caller" && exec timeout --foreground --signal=INT --kill-after=10 "${ABUSE_MAX_SECONDS:-600}" "$tmp/abuse" -server "$url" -fingerprint "$fp" \
	-server-pid "$server_pid" -data "$tmp/data" -assist "$tmp/assist" "$@") || status=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
	echo "abuse.sh: the server died during the probes; its last log lines:" >&2
	tail -n 20 "$tmp/serve.log" >&2
	status=1
fi
exit "$status"
