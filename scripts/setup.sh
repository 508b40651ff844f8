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

# Debian packages that the installed extras ask for ([tool.neurodecode.debian-packages] in
# pyproject.toml; the dev extra's tests open the HTML review reports in Debian's headless
# chromium). Checked on every run (cheap) and installed with apt-get as root, or through
# sudo without a password. Where that is impossible (no apt, no root) setup goes on and
# the browser tests skip, except under CI=true: there they would fail, so setup stops
# here with the reason instead of a later test failure.
debian_packages() {
  "${PYTHON:-python3}" - "$root/pyproject.toml" <<'PY'
import sys, tomllib
wanted = tomllib.load(open(sys.argv[1], "rb")).get("tool", {}).get("neurodecode", {})
for extra in ("dev", "braindecode"):  # the extras this script installs
    print(*wanted.get("debian-packages", {}).get(extra, []), sep="\n")
PY
}
missing=()
for package in $(debian_packages); do
  command -v "$package" >/dev/null ||
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
apt_install() {  # fresh images have no package lists yet: update once if the install fails
  local as_root=()
  [[ $(id -u) == 0 ]] || as_root=(sudo -n)
  command -v apt-get >/dev/null && "${as_root[@]}" true 2>/dev/null || return 1
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get install -y -q "$@" >&2 ||
    { "${as_root[@]}" apt-get update -q >&2 && "${as_root[@]}" apt-get install -y -q "$@" >&2; }
}
if ((${#missing[@]})); then
  why="apt-get install as root or through passwordless sudo failed or is not available"
  if apt_install "${missing[@]}"; then
    echo "neurodecode: installed Debian packages ${missing[*]}" >&2
  elif [[ ${CI:-} == true ]]; then
    echo "neurodecode: cannot install Debian packages ${missing[*]} ($why); under CI=true" \
      "the tests that need them would fail" >&2
    exit 1
  else
    echo "neurodecode: warning: Debian packages ${missing[*]} not installed ($why); the" \
      "tests that need them will be skipped" >&2
  fi
fi

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

# SzCORE's reference scoring, for the conformance tests: both packages declare Python >= 3.12
# but import on 3.11, and their dependencies that matter (timescoring, numpy, pandas) are
# already installed, so they go in without their declared requirements.
"$py" -m pip install --quiet --no-deps --ignore-requires-python \
  "szcore-evaluation==0.0.7" "epilepsy2bids==0.0.7"

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
