#!/usr/bin/env bash
# The test command: installs everything the suite needs (Debian packages, Go tools, the collector,
# this package with its test extras), then runs the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-tools.sh
python3 -m pip install --quiet --disable-pip-version-check \
    -c tools/python-constraints.txt -e '.[test]'
exec python3 -m pytest "$@"
