#!/usr/bin/env bash
# pdflatex for tests/store/test_results.py (every exported LaTeX table compiled in a minimal document):
# Debian's texlive-latex-base, and texlive-latex-recommended for booktabs.
#
#   bash tests/services/latex.sh install      # apt packages, once per machine (root)
set -euo pipefail

install() {
    if command -v pdflatex >/dev/null && kpsewhich booktabs.sty >/dev/null; then return; fi
    if [ "$(id -u)" != 0 ]; then echo "latex.sh: install needs root" >&2; exit 1; fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends texlive-latex-base \
        texlive-latex-recommended >/dev/null
}

case "${1:-}" in
    install) install ;;
    *) echo "usage: $0 install" >&2; exit 2 ;;
esac
