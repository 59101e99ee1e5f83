#!/usr/bin/env bash
# Tests of the Airflow provider package inside real Airflow: a virtualenv with Airflow (the
# collection's shipped constraints), ansible-runner, the ansible package and libvirt-python, rebuilt only
# when its requirements change. libvirt-python compiles against the OS's libvirt headers.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# The libvirt headers (libvirt-python compiles against them) and headless Chromium with its driver
# (the status page test), from the OS packages.
if ! pkg-config --exists libvirt 2>/dev/null || ! command -v chromedriver >/dev/null 2>&1; then
  qa_log "installing libvirt headers, Chromium and chromedriver"
  if command -v apt-get >/dev/null 2>&1; then
    qa_sudo apt-get update -q >/dev/null
    qa_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q libvirt-dev pkg-config chromium chromium-driver >/dev/null
  elif command -v dnf >/dev/null 2>&1; then
    qa_sudo dnf install -y -q libvirt-devel pkgconf-pkg-config chromium chromedriver
  else
    echo "install the libvirt development headers, pkg-config, chromium and chromedriver, then run this again" >&2
    exit 1
  fi
fi

venv="$QA_CACHE/provider-venv"
req="$QA_ROOT/provider/tests/requirements.txt"
constraints="$QA_ROOT/roles/airflow/files/constraints-$(awk '$1 == "airflow_version:" {print $2}' "$QA_ROOT/roles/airflow/defaults/main.yml")-python3.11.txt"
stamp="$venv/.requirements.sha256"
want=$(cat "$req" "$constraints" | sha256sum | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  qa_log "installing Airflow and the operators' libraries into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r "$req" --constraint "$constraints"
  echo "$want" >"$stamp"
fi
# Installed from a clean copy, not in place: a build in provider/ would leave egg-info there, which
# the airflow role copies to hosts with the package source.
src="$QA_CACHE/provider-src"
rm -rf "$src"
qa_copy_tree provider "$src"
"$venv/bin/pip" install -q --no-deps --force-reinstall "$src"
cd "$QA_ROOT/provider/tests"
PYTHONDONTWRITEBYTECODE=1 exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
