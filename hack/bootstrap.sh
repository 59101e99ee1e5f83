#!/usr/bin/env bash
# Installs what the local test hosts and tests need on a bare machine:
# podman, runc, debootstrap and haproxy (the unit tests' TLS frontend of Temporal) from the OS packages, and
# the controller tools in a project virtualenv. Safe to run again; it only does what is missing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

missing=()
for tool in podman runc debootstrap haproxy; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  qa_log "installing ${missing[*]}"
  if command -v apt-get >/dev/null 2>&1; then
    qa_sudo apt-get update -q >/dev/null
    qa_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc debootstrap haproxy >/dev/null
  elif command -v dnf >/dev/null 2>&1; then
    qa_sudo dnf install -y -q podman runc debootstrap haproxy
  else
    echo "install podman, runc, debootstrap and haproxy, then run this again" >&2
    exit 1
  fi
fi

req="$QA_ROOT/tests/requirements.txt"
stamp="$QA_VENV/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$QA_VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  qa_log "installing controller tools into $QA_VENV"
  python3 -m venv "$QA_VENV"
  "$QA_VENV/bin/pip" install -q --upgrade pip
  "$QA_VENV/bin/pip" install -q -r "$req"
  echo "$want" >"$stamp"
fi

# The collection under test, found by Ansible as qubinode.airflow.
mkdir -p "$QA_CACHE/collections/ansible_collections/qubinode" "$QA_CACHE/pip" "$QA_CACHE/apt"/{default,distributed,podman}
ln -sfn "$QA_ROOT" "$QA_CACHE/collections/ansible_collections/qubinode/airflow"

"$QA_ROOT/hack/build-testhost-image.sh"
