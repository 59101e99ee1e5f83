#!/usr/bin/env bash
# Prints the Airflow side's figures (see hack/bench_airflow_side.py), measured on the `make up` test
# host, converged with the Ansible operators and the example DAGs (the promote DAG) enabled.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$QA_ROOT"
export QA_CACHE
hack/up.sh -e '{"airflow_ansible_operators": true, "airflow_example_dags": true}' >"$QA_CACHE/bench-airflow-side-up.log" 2>&1 \
  || { tail -30 "$QA_CACHE/bench-airflow-side-up.log"; exit 1; }
exec python3 hack/bench_airflow_side.py
