#!/usr/bin/env bash
# Removes the test host of `make up` (its database and secrets go with it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
name=${QA_UP_NAME:-qubinode-airflow-dev}
if qa_sudo podman container exists "$name"; then
  qa_sudo podman rm -f -t 10 "$name" >/dev/null
  qa_log "removed $name"
fi
if qa_sudo podman network exists "$QA_NETWORK"; then
  qa_sudo podman network rm "$QA_NETWORK" >/dev/null 2>&1 || true
fi
