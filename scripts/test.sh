#!/usr/bin/env bash
# Set up the environment if needed, then run the test suite. Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
exec "${NEURODECODE_VENV:-$root/.venv}/bin/python" -m pytest -m "not gpu" "$@"
