#!/usr/bin/env bash
# Time one file across a direct session on loopback with the real binaries:
# assist invite (on a fresh Xvfb, --allow view, files allowed at the
# question) and assist join --send FILE. Prints the size, the seconds from
# the novice's yes to "file sent" on the expert's side, and the rate.
#
#   scripts/filebench.sh [SIZE_MIB] [DIR]
#
# SIZE_MIB defaults to 1024 (1 GiB of random bytes); DIR (default a new
# directory under /dev/shm, so the disk is not what is measured) holds the
# file and both sides' folders. Needs Go and Xvfb.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1024}
base=${2:-/dev/shm}
tmp=$(mktemp -d "$base/filebench.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

tags=()
[ -e /usr/include/turbojpeg.h ] && tags=(-tags turbojpeg)
go build "${tags[@]}" -o "$tmp/assist" ./cmd/assist

mkfifo "$tmp/displayfd"
Xvfb -displayfd 3 -screen 0 320x240x24 -nolisten tcp 3>"$tmp/displayfd" 2>/dev/null &
pids+=($!)
display=":$(head -n1 "$tmp/displayfd")"

mkdir "$tmp/src" "$tmp/novice" "$tmp/expert"
head -c "$((size << 20))" /dev/urandom >"$tmp/src/big.bin"
echo "filebench-password" >"$tmp/pw"

mkfifo "$tmp/novice.in"
exec 4<>"$tmp/novice.in"
ASSIST_LOG=warn "$tmp/assist" invite --file "$tmp/help.assist" --password-file "$tmp/pw" \
	--display "$display" --listen 127.0.0.1:0 --no-portmap --no-page --allow view \
	--files-dir "$tmp/novice" <&4 >"$tmp/novice.out" 2>&1 &
pids+=($!)
until grep -q '^waiting for ' "$tmp/novice.out"; do sleep 0.1; done

ASSIST_LOG=warn "$tmp/assist" join --password-file "$tmp/pw" --no-browser \
	--files-dir "$tmp/expert" --send "$tmp/src/big.bin" "$tmp/help.assist" \
	</dev/null >"$tmp/expert.out" 2>&1 &
pids+=($!)
until grep -q 'asks to exchange files' "$tmp/novice.out"; do sleep 0.05; done
start=$(date +%s.%N)
echo y >&4
until grep -q '^file sent: ' "$tmp/expert.out"; do
	if grep -q '^file \(failed\|cancelled\|interrupted\|not sent\)' "$tmp/expert.out"; then
		cat "$tmp/expert.out" >&2
		exit 1
	fi
	sleep 0.05
done
end=$(date +%s.%N)
cmp "$tmp/src/big.bin" "$tmp/novice/big.bin"
awk -v s="$start" -v e="$end" -v m="$size" 'BEGIN {
	t = e - s
	printf "%d MiB in %.2f s: %.0f MiB/s (%.0f Mbit/s), the file compared equal\n", m, t, m / t, m * 8.388608 / t
}'
