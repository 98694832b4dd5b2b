#!/usr/bin/env bash
# Make sure Debian's Prometheus is there for the alerting-rule tests (tests/deploy/).
#
#   scripts/ensure-prometheus.sh
#
# Idempotent: does nothing when /usr/bin/prometheus and /usr/bin/promtool exist. Otherwise, as
# root, installs the Debian package (`apt-get install --no-install-recommends prometheus`; one
# `apt-get update` first); as anyone else it only says why those tests will be skipped. The
# package's own service is not used: the tests run their own `prometheus` process on a free
# port with a throwaway configuration. Never fails the build: the tests skip with the same
# explanation when the binaries are missing.
set -uo pipefail

if [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-prometheus: prometheus/promtool are missing and this is not root, so they" \
        "cannot be installed here; the alerting-rule tests will be skipped (install them" \
        "with 'sudo apt-get install prometheus', or run this script as root)" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-prometheus: prometheus is missing and apt-get is not available (not Debian?);" \
        "the alerting-rule tests will be skipped" >&2
    exit 0
fi
echo "ensure-prometheus: installing Debian's prometheus for the alerting-rule tests" >&2
# The package's service would start a Prometheus on :9090; nothing here needs it.
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq || ! apt-get install -y -qq --no-install-recommends prometheus; then
    echo "ensure-prometheus: apt-get could not install prometheus; the alerting-rule tests" \
        "will be skipped" >&2
    exit 0
fi
if [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/promtool ]; then
    echo "ensure-prometheus: the prometheus package did not provide /usr/bin/prometheus and" \
        "/usr/bin/promtool; the alerting-rule tests will be skipped" >&2
fi
exit 0
