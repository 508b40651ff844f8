#!/usr/bin/env bash
# Set up the environment if needed, then run `python -m neurodecode.train` with the given
# overrides, e.g. `bash scripts/train.sh recipe=seizure data=simulated`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
exec "${NEURODECODE_VENV:-$root/.venv}/bin/python" -m neurodecode.train "$@"
