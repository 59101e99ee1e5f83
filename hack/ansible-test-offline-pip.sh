#!/usr/bin/env bash
# ansible-test bootstraps pip in its per-test virtualenvs by downloading a
# get-pip script. Hosts without that download (air-gapped sites, closed CI)
# get a stand-in in ansible-test's cache that installs pip from the
# interpreter's own ensurepip wheel and then the requested versions from the
# configured package index.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

version=$(python - <<'PY'
import pathlib, re, ansible_test
src = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", src.read_text()).group(1))
PY
)
cache="$HOME/.ansible/test/cache/get_pip_${version//./_}.py"
[ -f "$cache" ] && exit 0
mkdir -p "$(dirname "$cache")"
cat >"$cache" <<'PY'
"""Stand-in for get-pip.py: pip from ensurepip, then the requested packages."""
import ensurepip
import os
import runpy
import sys

saved = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
# ensurepip drops PIP_* settings (index, certificates); put them back.
os.environ.clear()
os.environ.update(saved)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install"] + args
runpy.run_module("pip", run_name="__main__", alter_sys=True)
PY
qa_log "prepared offline pip bootstrap for ansible-test: $cache"
