#!/usr/bin/env bash
# Presence at scale on this machine: 10,000 users, each with 10 contacts
# and one messenger connection, on one fresh `assist serve`; presence
# changes at a steady rate; prints how long changes took to reach each
# contact (p50, p90, p99, max), deliveries missing, and the server's memory.
#
#   scripts/presence.sh [-clients 10000] [-contacts 10] [-rate 200] [-duration 30s]
#                       [-json results.json]
#
# The users and their contacts are written into the server's --data before
# it starts (bench/presence -seed): creating 10,000 accounts through the
# protocol from one address would hit its account-creation limit. The
# server runs with --max-conns-per-address above the client count, since
# every client comes from 127.0.0.1. Everything is bounded (connecting: 5
# min at most; changes: -duration; then 5 s for the last deliveries) and a
# backstop timeout (PRESENCE_MAX_SECONDS, default 900) ends it regardless.
# The server is stopped and its data removed on exit, whatever happens.
set -euo pipefail

caller=$PWD
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
server_pid=
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -INT "$server_pid" 2>/dev/null || true
		for _ in $(seq 100); do
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

# -clients and -contacts are needed by both steps.
clients=10000 contacts=10
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	case "${args[i]}" in
	-clients | --clients) clients=${args[i + 1]} ;;
	-clients=* | --clients=*) clients=${args[i]#*=} ;;
	-contacts | --contacts) contacts=${args[i + 1]} ;;
	-contacts=* | --contacts=*) contacts=${args[i]#*=} ;;
	esac
done

tags=()
if [ -e /usr/include/turbojpeg.h ]; then
	tags=(-tags turbojpeg)
fi
echo "presence.sh: building assist and the benchmark" >&2
go build "${tags[@]}" -o "$tmp/assist" ./cmd/assist
go build -o "$tmp/presence" ./bench/presence

# Each side holds a descriptor per connection, plus some.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((clients + 1000)) ]; then
	echo "presence.sh: open files limit $(ulimit -n) is too low for $clients clients (need $((clients + 1000)))" >&2
	exit 1
fi

mkdir -m 0700 "$tmp/data"
"$tmp/presence" -seed "$tmp/data" -clients "$clients" -contacts "$contacts"

"$tmp/assist" serve --listen 127.0.0.1:0 --data "$tmp/data" \
	--turn-listen off --turns-listen off --max-conns-per-address $((clients + 100)) \
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
		echo "presence.sh: assist serve exited:" >&2
		cat "$tmp/serve.log" >&2
		exit 1
	fi
	sleep 0.2
done
if [ -z "$url" ] || [ -z "$fp" ]; then
	echo "presence.sh: assist serve printed no URL and fingerprint in 20 s" >&2
	exit 1
fi
echo "presence.sh: server $url (pid $server_pid)" >&2

status=0
(cd "$caller" && exec timeout --foreground --signal=INT --kill-after=10 "${PRESENCE_MAX_SECONDS:-900}" \
	"$tmp/presence" -server "$url" -fingerprint "$fp" -server-pid "$server_pid" "$@") || status=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
	echo "presence.sh: the server died during the benchmark; its last log lines:" >&2
	tail -n 20 "$tmp/serve.log" >&2
	status=1
fi
exit "$status"
