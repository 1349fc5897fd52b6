#!/usr/bin/env bash
# Installs the test dependencies into .venv and runs the whole test suite.
# Extra arguments go to pytest (for example: ./test.sh -k emulator).
set -euo pipefail
cd "$(dirname "$0")"

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# the CPU build of torch lies on this disk; installing it first keeps
# sentence-transformers from pulling a multi-gigabyte CUDA build
"${pip[@]}" torch==2.13.0
"${pip[@]}" -r requirements-dev.txt

# headless Chromium for the browser test comes from Debian, never a download
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null \
        || echo "test.sh: could not install chromium; browser tests will be skipped"
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .

set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
