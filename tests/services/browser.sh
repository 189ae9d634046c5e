#!/usr/bin/env bash
# Headless Chromium for tests/commands/test_mlflow_view.py (the saved MLflow view, checked in a real
# browser). Debian's chromium package: Playwright drives it through executable_path, so no browser
# download from Playwright's CDN is needed (CI machines reach only the package registries).
#
#   bash tests/services/browser.sh install      # apt package, once per machine (root)
set -euo pipefail

install() {
    if command -v chromium >/dev/null; then return; fi
    if [ "$(id -u)" != 0 ]; then echo "browser.sh: install needs root" >&2; exit 1; fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
}

case "${1:-}" in
    install) install ;;
    *) echo "usage: $0 install" >&2; exit 2 ;;
esac
