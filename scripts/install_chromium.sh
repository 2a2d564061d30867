#!/bin/sh
# Headless Chromium for tests/test_browser_report.py (it opens reports/<preset>/index.html and checks
# that every image loaded and every table is present). Debian's `chromium` package; installed only
# when running as root with apt available, otherwise the browser test skips with a message.
# Called by the Makefile's install step; safe to run again.
set -e
if [ -x /usr/bin/chromium ]; then
    echo "install_chromium: /usr/bin/chromium present"
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
        || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
else
    echo "install_chromium: not root or no apt-get: skipping (tests/test_browser_report.py will skip)" >&2
fi
