#!/bin/sh
# scripts/screenshots.sh: the pictures of the README, taken from real
# sessions so that they stay true. It runs the end-to-end tests that drive
# them (the real assist binary, assist serve, Xvfb, headless Chromium; see
# internal/lab/doc.go for the Debian packages) with ASSIST_E2E_ARTIFACTS
# set, where those tests save what the browser shows, and copies the
# pictures the README uses into docs/.
#
# Usage: scripts/screenshots.sh        (from anywhere in the repository)
set -eu
cd "$(dirname "$0")/.."

shots=$(mktemp -d)
trap 'rm -rf "$shots"' EXIT INT TERM

# The tests and the pictures each saves (NAME.png):
#   TestAppGetHelp      app-start, app-invitation (direct), app-question
#   TestAppAskContact   app-contacts, app-contact-question, app-invitation-server
tests='TestAppGetHelp|TestAppAskContact'
pictures='app-start app-contacts app-invitation-server app-invitation app-contact-question'
# Added when the on-screen indicator and the one expert page are there:
# their tests save these pictures too.
for extra in TestIndicatorScreenshot:indicator TestExpertPageScreenshot:expert-page; do
	test=${extra%%:*}
	if grep -rqs "func $test(" cmd/assist; then
		tests="$tests|$test"
		pictures="$pictures ${extra#*:}"
	fi
done

ASSIST_E2E_ARTIFACTS="$shots" go test -tags turbojpeg -count=1 -run "^($tests)\$" ./cmd/assist/

mkdir -p docs
for p in $pictures; do
	if [ ! -s "$shots/$p.png" ]; then
		echo "screenshots: $p.png was not taken (did its test skip? run it with -v)" >&2
		exit 1
	fi
	cp "$shots/$p.png" "docs/$p.png"
	echo "docs/$p.png"
done
