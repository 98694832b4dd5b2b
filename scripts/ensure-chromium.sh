#!/usr/bin/env bash
# Make sure Debian's chromium is there for the browser tests (tests/web/test_browser.py).
#
#   scripts/ensure-chromium.sh
#
# Idempotent: does nothing when /usr/bin/chromium exists. Otherwise, as root, installs the
# Debian package (one `apt-get update`, then `apt-get install chromium`); as anyone else it
# only says why the browser tests will be skipped. Playwright drives this chromium through
# `executable_path`; `playwright install` (a browser download) is never needed. Never fails
# the build: the tests skip with the same explanation when the browser is missing.
set -uo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-chromium: $CHROMIUM is missing and this is not root, so it cannot be" \
        "installed here; browser tests will be skipped (install it with" \
        "'sudo apt-get install chromium', or run this script as root)" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: $CHROMIUM is missing and apt-get is not available (not Debian?);" \
        "browser tests will be skipped" >&2
    exit 0
fi
echo "ensure-chromium: installing Debian's chromium for the browser tests" >&2
if ! apt-get update -qq || ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; then
    echo "ensure-chromium: apt-get could not install chromium; browser tests will be skipped" >&2
    exit 0
fi
if [ ! -x "$CHROMIUM" ]; then
    echo "ensure-chromium: the chromium package did not provide $CHROMIUM;" \
        "browser tests will be skipped" >&2
fi
exit 0
