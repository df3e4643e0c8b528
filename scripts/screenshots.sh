#!/bin/sh
# scripts/screenshots.sh: the pictures of the README, taken from real
# sessions so that they stay true. It runs the end-to-end tests that drive
# them (the real assist binary, assist serve, Xvfb, headless Chromium; see
# internal/lab/doc.go for the Debian packages) with ASSIST_E2E_ARTIFACTS
# set, where those tests save what the browser or the desktop shows, and
# copies the pictures the README uses into docs/.
#
# Usage: scripts/screenshots.sh        (from anywhere in the repository)
set -eu
cd "$(dirname "$0")/.."

shots=$(mktemp -d)
trap 'rm -rf "$shots"' EXIT INT TERM
mkdir -p docs

# run TESTS: the tests (a go test -run pattern) save their pictures.
run() {
	ASSIST_E2E_ARTIFACTS="$shots" go test -tags turbojpeg -count=1 -run "$1" ./cmd/assist/
}

# keep SAVED NAME: copy the picture a test saved as docs/NAME.png.
keep() {
	if [ ! -s "$shots/$1.png" ]; then
		echo "screenshots: $1.png was not taken (did its test skip? run it with -v)" >&2
		exit 1
	fi
	cp "$shots/$1.png" "docs/$2.png"
	echo "docs/$2.png"
}

# has TEST: the test exists in this tree.
has() {
	grep -qs "^func $1(" cmd/assist/*_test.go
}

# The novice's app: Get help, a contact asked, the question.
run '^(TestAppGetHelp|TestAppAskContact)$'
keep app-start app-start
keep app-contacts app-contacts
keep app-invitation-server app-invitation
keep app-invitation app-invitation-direct
keep app-contact-question app-question

# The on-screen indicator on the novice's desktop (an Xvfb screenshot).
if has TestIndicator; then
	run '^TestIndicator$'
	keep TestIndicator-viewing indicator-viewing
	keep TestIndicator-controlling indicator-controlling
fi

# The expert's page, from assist join.
if has TestExpertPage; then
	run '^TestExpertPage$/^assist_join$'
	keep expert-page-join-viewing expert-page
fi

# The novice's page asking "Still sharing?", and sending a file.
if has TestNovicePageStillSharing; then
	run '^(TestNovicePageStillSharing|TestNovicePageSendFile)$'
	keep novice-page-still-sharing novice-still-sharing
	keep novice-page-send-file novice-send-file
fi
