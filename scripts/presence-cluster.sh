#!/usr/bin/env bash
# Presence at scale on several nodes: 10,000 users, each with 10 contacts
# and one messenger connection, spread over three `assist serve` nodes
# that share one PostgreSQL (--store) and one NATS with JetStream (--bus);
# user i connects to node i mod 3, so most of a user's contacts sit on
# other nodes and their presence crosses NATS. Presence changes at a
# steady rate; prints how long changes took to reach each contact (p50,
# p90, p99, max), deliveries missing, the signalling round trip (novice on
# one node, expert on the next), and each node's memory and CPU, then
# PostgreSQL's and NATS's.
#
#   scripts/presence-cluster.sh [-nodes 3] [-clients 10000] [-contacts 10]
#                               [-rate 200] [-duration 30s] [-json results.json]
#
# Everything runs on this machine, on loopback: PostgreSQL from Debian's
# package (initdb and postgres as "nobody" when run as root, as PostgreSQL
# refuses root), nats-server built from the module go.mod pins (Debian's
# is too old for per-message TTLs), the nodes with --max-conns-per-address
# above the client count since every client comes from 127.0.0.1. The
# users are written into PostgreSQL before the nodes start (bench/presence
# -seed). A backstop timeout (PRESENCE_MAX_SECONDS, default 1200) ends it
# regardless; everything is stopped and removed on exit, whatever happens.
set -euo pipefail

caller=$PWD
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
chmod 0755 "$tmp"
pids=()
pg_pid=
cleanup() {
	for p in "${pids[@]}"; do
		kill -INT "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		for _ in $(seq 100); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nodes=3 clients=10000 contacts=10
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	-nodes | --nodes) nodes=$2; shift 2; continue ;;
	-nodes=* | --nodes=*) nodes=${1#*=}; shift; continue ;;
	-clients | --clients) clients=$2 ;;
	-clients=* | --clients=*) clients=${1#*=} ;;
	-contacts | --contacts) contacts=$2 ;;
	-contacts=* | --contacts=*) contacts=${1#*=} ;;
	esac
	args+=("$1")
	shift
done

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to 30 s for a line matching $2 in file $1 and prints its match.
wait_line() {
	local file=$1 re=$2 pid=$3 v
	for _ in $(seq 150); do
		v=$(sed -n "s/$re/\1/p" "$file" 2>/dev/null | head -n 1)
		if [ -n "$v" ]; then
			echo "$v"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.2
	done
	return 1
}

tags=()
if [ -e /usr/include/turbojpeg.h ]; then
	tags=(-tags turbojpeg)
fi
echo "presence-cluster.sh: building assist, the benchmark and nats-server" >&2
go build "${tags[@]}" -o "$tmp/assist" ./cmd/assist
go build -o "$tmp/presence" ./bench/presence
go build -o "$tmp/nats-server" github.com/nats-io/nats-server/v2

# Each side holds a descriptor per connection, plus some.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((clients + 1000)) ]; then
	echo "presence-cluster.sh: open files limit $(ulimit -n) is too low for $clients clients (need $((clients + 1000)))" >&2
	exit 1
fi

# PostgreSQL.
pgbin=
for d in /usr/lib/postgresql/*/bin; do
	[ -x "$d/postgres" ] && pgbin=$d
done
if [ -z "$pgbin" ]; then
	echo "presence-cluster.sh: PostgreSQL is not installed (Debian: apt-get install postgresql)" >&2
	exit 1
fi
as_pg=()
if [ "$(id -u)" = 0 ]; then
	as_pg=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
fi
mkdir -m 0700 "$tmp/pg"
[ "$(id -u)" = 0 ] && chown nobody:nogroup "$tmp/pg"
"${as_pg[@]}" "$pgbin/initdb" -D "$tmp/pg/data" -U postgres --auth=trust -E UTF8 >"$tmp/initdb.log" 2>&1 ||
	{ cat "$tmp/initdb.log" >&2; exit 1; }
pg_port=$(free_port)
# Connections: a pool per node and store; the default 100 is plenty.
# synchronous_commit=off: seeding 10,000 users commits 60,000 times; a
# crash could lose the last commits, which a benchmark does not mind.
"${as_pg[@]}" "$pgbin/postgres" -D "$tmp/pg/data" -h 127.0.0.1 -p "$pg_port" -k "$tmp/pg" -c synchronous_commit=off \
	>"$tmp/postgres.log" 2>&1 </dev/null &
pg_pid=$!
pids+=("$pg_pid")
for _ in $(seq 150); do
	"$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break
	sleep 0.2
done
"$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" || { cat "$tmp/postgres.log" >&2; exit 1; }
psql -q -h 127.0.0.1 -p "$pg_port" -U postgres -c 'CREATE DATABASE assist' >/dev/null
dsn="postgres://postgres@127.0.0.1:$pg_port/assist?sslmode=disable"
echo "presence-cluster.sh: PostgreSQL on 127.0.0.1:$pg_port (pid $pg_pid)" >&2

# NATS with JetStream.
nats_port=$(free_port)
"$tmp/nats-server" -a 127.0.0.1 -p "$nats_port" -js -sd "$tmp/nats" >"$tmp/nats.log" 2>&1 </dev/null &
nats_pid=$!
pids+=("$nats_pid")
wait_line "$tmp/nats.log" '^.*\(Server is ready\)$' "$nats_pid" >/dev/null ||
	{ echo "presence-cluster.sh: nats-server did not start:" >&2; cat "$tmp/nats.log" >&2; exit 1; }
bus="nats://127.0.0.1:$nats_port"
echo "presence-cluster.sh: NATS on $bus (pid $nats_pid)" >&2

"$tmp/presence" -seed "$dsn" -clients "$clients" -contacts "$contacts"

# The nodes: n1 creates the certificate and keys in its --data; the others
# get copies, as an operator copies them to each machine.
urls=() node_pids=() fp=
for i in $(seq "$nodes"); do
	data=$tmp/n$i
	mkdir -m 0700 "$data"
	if [ "$i" -gt 1 ]; then
		cp "$tmp"/n1/*.pem "$data"/
		cp "$tmp"/n1/*.key "$data"/ 2>/dev/null || true
	fi
	"$tmp/assist" serve --listen "127.0.0.1:$(free_port)" --data "$data" --node "n$i" \
		--store "$dsn" --bus "$bus" \
		--turn-listen off --turns-listen off --max-conns-per-address $((clients + 100)) \
		>"$tmp/n$i.out" 2>"$tmp/n$i.log" </dev/null &
	pid=$!
	pids+=("$pid")
	url=$(wait_line "$tmp/n$i.out" '^listening on \(https:\/\/[^ ]*\)$' "$pid") &&
		f=$(wait_line "$tmp/n$i.out" '^fingerprint: \(sha256:[0-9a-fA-F]*\)$' "$pid") || {
		echo "presence-cluster.sh: node n$i did not start:" >&2
		tail -n 20 "$tmp/n$i.log" >&2
		exit 1
	}
	if [ -n "$fp" ] && [ "$f" != "$fp" ]; then
		echo "presence-cluster.sh: node n$i presents $f, n1 $fp" >&2
		exit 1
	fi
	fp=$f
	urls+=("$url")
	node_pids+=("$pid")
	echo "presence-cluster.sh: node n$i $url (pid $pid)" >&2
done

status=0
(cd "$caller" && exec timeout --foreground --signal=INT --kill-after=10 "${PRESENCE_MAX_SECONDS:-1200}" \
	"$tmp/presence" -server "$(IFS=,; echo "${urls[*]}")" -fingerprint "$fp" \
	-server-pid "$(IFS=,; echo "${node_pids[*]}")" "${args[@]}") || status=$?

# PostgreSQL (all its processes) and NATS at the end.
# PostgreSQL's processes share its buffers, which each one's RSS counts
# again: their PSS (proportional set size) adds up to the real total.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
cpu_s() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_pss=0 pg_cpu=0
for p in $pg_pid $(pgrep -P "$pg_pid" || true); do
	pg_pss=$((pg_pss + $(pss_kib "$p")))
	pg_cpu=$(awk -v a="$pg_cpu" -v b="$(cpu_s "$p")" 'BEGIN {print a + b}')
done
echo "postgresql: PSS $((pg_pss / 1024)) MiB (all its processes), CPU ${pg_cpu} s in all (children that exited not counted)"
echo "nats-server: RSS $(($(rss_kib "$nats_pid") / 1024)) MiB, CPU $(cpu_s "$nats_pid") s in all"
for i in "${!node_pids[@]}"; do
	if ! kill -0 "${node_pids[$i]}" 2>/dev/null; then
		echo "presence-cluster.sh: node n$((i + 1)) died during the benchmark; its last log lines:" >&2
		tail -n 20 "$tmp/n$((i + 1)).log" >&2
		status=1
	fi
done
exit "$status"
