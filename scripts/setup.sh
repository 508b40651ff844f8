#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv and install neurodecode
# with its test, baseline and fine-tuning extras. Safe to run again: it does nothing when
# pyproject.toml and this script are unchanged since the last successful install.
#
# Environment:
#   NEURODECODE_VENV           where to put the environment (default: <repo>/.venv)
#   NEURODECODE_TORCH_VERSION  torch to install when none is there yet (default 2.13.0,
#                              the CPU wheel our development machines carry locally)
#   PYTHON                     interpreter used to create the environment (default python3)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${NEURODECODE_VENV:-$root/.venv}
stamp=$venv/.neurodecode-install-stamp
want=$(cat "$root/pyproject.toml" "$root/scripts/setup.sh" | sha256sum | cut -d' ' -f1)

if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi

echo "neurodecode: setting up $venv (first run takes a few minutes)" >&2
[[ -x $venv/bin/python ]] || "${PYTHON:-python3}" -m venv "$venv"
py=$venv/bin/python
"$py" -m pip install --quiet --upgrade pip

# Keep whatever torch is already there (GPU machines bring their own); otherwise install
# the pinned one. Naming the installed version in the next install stops pip from
# replacing a CPU build with the registry's CUDA build when a dependency asks for torch.
# (asked of pip's metadata, not by importing torch: torch warns on import while numpy is
# not installed yet)
torch_version() {
  "$py" -c 'from importlib.metadata import version; print(version("torch").split("+")[0])' 2>/dev/null
}
if ! torch_version >/dev/null; then
  "$py" -m pip install --quiet "torch==${NEURODECODE_TORCH_VERSION:-2.13.0}"
fi
torch_pin="torch==$(torch_version)"
"$py" -m pip install --quiet "$torch_pin" -e "$root[dev,braindecode,finetune]"

# braindecode pulls torchaudio from the registry. Where that torchaudio is a CUDA build next
# to a CPU torch, its native extension cannot load and `import torchaudio` (so braindecode)
# fails. torchaudio runs without its extension in pure-Python mode, so set the unloadable
# libraries aside (renamed, not deleted) and check that the import now works.
"$py" - <<'PY'
import importlib.util, pathlib, subprocess, sys
spec = importlib.util.find_spec("torchaudio")
if spec is not None:
    probe = [sys.executable, "-c", "import torchaudio"]
    if subprocess.run(probe, capture_output=True).returncode != 0:
        libdir = pathlib.Path(spec.origin).parent / "lib"
        for lib in libdir.glob("*.so"):
            lib.rename(lib.with_name(lib.name + ".unloadable"))
            print(f"neurodecode setup: set aside {lib.name} (native torchaudio library that "
                  "cannot load next to this torch)", file=sys.stderr)
        subprocess.run(probe, check=True)
PY

echo "$want" >"$stamp"
