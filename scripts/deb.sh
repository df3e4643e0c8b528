#!/usr/bin/env bash
# Builds the Debian package assist_VERSION_ARCH.deb into DIR: the binary
# (with libjpeg-turbo, -tags turbojpeg, its version set by -ldflags), the
# menu entry and the assist:// link handler (packaging/linux, the same
# entries "assist install-desktop" writes for one user), the licences.
# Registering the handler needs no maintainer script: Debian's
# desktop-file-utils trigger rebuilds the MIME cache when
# /usr/share/applications changes, and xdg-open then finds it.
#   scripts/deb.sh VERSION DIR (VERSION like 1.2.3)
# ASSIST_DEB_BINARY=PATH packages that binary instead of building one (the
# package test reuses the binary the tests built).
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: scripts/deb.sh VERSION DIR (VERSION like 1.2.3)"
version=${1:?$usage}
dir=${2:?$usage}
[[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || { echo "deb.sh: version $version: must start with a digit ($usage)" >&2; exit 2; }
arch=$(dpkg --print-architecture)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"

install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/applications" "$root/usr/share/doc/assist"
if [ -n "${ASSIST_DEB_BINARY:-}" ]; then
	install -m 0755 "$ASSIST_DEB_BINARY" "$root/usr/bin/assist"
else
	go build -trimpath -tags turbojpeg -ldflags="-s -w -X main.version=$version" -o "$root/usr/bin/assist" ./cmd/assist
fi
install -m 0644 packaging/linux/assist.desktop packaging/linux/assist-link.desktop "$root/usr/share/applications/"
# The agent of an organisation's machine: the user unit is shipped, not
# enabled (systemctl --user enable --now assist-agent, or assist agent
# install); the autostart entry is a template for /etc/xdg/autostart,
# which an admin copies there for every user of an enrolled machine.
install -d "$root/usr/lib/systemd/user" "$root/usr/share/assist"
install -m 0644 packaging/linux/assist-agent.service "$root/usr/lib/systemd/user/"
install -m 0644 packaging/linux/assist-agent.desktop "$root/usr/share/assist/"
# Debian's policy: the copyright file, and the changelog is optional for
# a package built outside the archive.
{
	echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
	echo "Upstream-Name: assist"
	echo "Source: https://github.com/assist-project/assist"
	echo
	echo "Files: *"
	echo "License: Apache-2.0"
	echo " On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0."
	echo " The software assist contains is listed, each with its licence, in"
	echo " /usr/share/doc/assist/THIRD_PARTY_LICENSES.gz."
} >"$root/usr/share/doc/assist/copyright"
gzip -9 -n -c THIRD_PARTY_LICENSES >"$root/usr/share/doc/assist/THIRD_PARTY_LICENSES.gz"
gzip -9 -n -c README.md >"$root/usr/share/doc/assist/README.md.gz"
chmod 0644 "$root/usr/share/doc/assist/"*

# The shared libraries the binary needs, with the versions its symbols
# require (libc6, libturbojpeg0), as Debian's own packages compute them.
shlibs=$(cd "$root" && mkdir -p debian && printf 'Source: assist\n\nPackage: assist\nArchitecture: any\n' >debian/control &&
	dpkg-shlibdeps -O -e usr/bin/assist 2>/dev/null | sed -n 's/^shlibs:Depends=//p'; rm -rf debian)
[ -n "$shlibs" ] || { echo "deb.sh: dpkg-shlibdeps found no libraries (Debian: dpkg-dev)" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: assist
Version: $version
Architecture: $arch
Maintainer: Assist maintainers <maintainers@assist-project.invalid>
Installed-Size: $size
Depends: $shlibs
Recommends: xdg-utils
Suggests: chromium | firefox-esr
Section: net
Priority: optional
Homepage: https://github.com/assist-project/assist
Description: remote assistance: get help from someone you trust
 A person who needs help invites someone they trust with a code; the
 helper sees the desktop only after a yes, and uses the mouse and
 keyboard only after a second yes. Esc takes control back at once.
 Includes the server (assist serve) that helpers and helped meet through.
CONTROL
(cd "$root" && find usr -type f -exec md5sum {} + | sort -k2) >"$root/DEBIAN/md5sums"
out="$dir/assist_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"
