#!/usr/bin/env bash
# The test command: installs everything the suite needs (Debian packages, Go tools, the collector,
# this package with its test extras), then runs the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-tools.sh
python3 -m pip install --quiet --disable-pip-version-check \
    -c tools/python-constraints.txt -e '.[test]'
# Several workers: most of the suite's time is waiting on real servers (alerts' `for`, scrapes,
# notifications), which overlaps well on two cores; tests/covet_parallel.py keeps each module whole
# on one worker. COVET_TEST_WORKERS=0 (or -n 0 among the arguments) runs it in one process.
exec python3 -m pytest -n "${COVET_TEST_WORKERS:-4}" --dist loadgroup "$@"
