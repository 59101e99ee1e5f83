#!/usr/bin/env bash
# Prints how long a git push takes to become a runnable DAG (see hack/bench_dag_repo.py), measured
# against the `make up` test host, which it creates when missing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$QA_ROOT"
export QA_CACHE
name=${QA_UP_NAME:-qubinode-airflow-dev}
qa_sudo podman container exists "$name" || hack/up.sh >"$QA_CACHE/bench-dag-repo-up.log" 2>&1
exec python3 hack/bench_dag_repo.py
