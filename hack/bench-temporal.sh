#!/usr/bin/env bash
# Prints the Temporal engine figures, all measured in this run on three test hosts of its own:
# qa-bench-core (PostgreSQL, Airflow core, Temporal, Redis for Celery) and two worker hosts.
#   - LocalExecutor, the Temporal executor (one worker host x 8, two x 4), EdgeExecutor and
#     CeleryExecutor (one worker host x 8 each), 8 task slots each: 100 independent no-op tasks and a
#     chain of 20, alternating rounds, median and range, CPU per task
#   - idle RSS of the Temporal server, one worker and its task runner
# The hosts are removed at the end (QA_BENCH_KEEP=1 keeps them).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$QA_ROOT"
net=qubinode-airflow-bench
port=${QA_BENCH_UI_PORT:-18090}
work="$QA_CACHE/bench-temporal"
mkdir -p "$work"; : >"$work/log"
hosts=(qa-bench-core qa-bench-w1 qa-bench-w2)

qa_sudo podman network exists "$net" || qa_sudo podman network create "$net" >/dev/null
for h in "${hosts[@]}"; do
  qa_sudo podman container exists "$h" && continue
  # The core host only gets the shared apt archive: apt locks it, and the workers install at once.
  extra=(); [ "$h" = qa-bench-core ] && extra=(-p "127.0.0.1:$port:8080" -v "$QA_APT_CACHE:/var/cache/apt/archives")
  qa_sudo podman run -d --name "$h" --hostname "$h" --systemd=always --network "$net" "${extra[@]}" \
    -v "$QA_PIP_CACHE:/root/.cache/pip" \
    -v "$QA_CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" "$QA_IMAGE" /sbin/init >/dev/null
done
cat >"$work/inventory.yml" <<INV
all:
  vars:
    ansible_connection: containers.podman.podman
    airflow_engine: temporal
    # The engines a user would pick instead, in the same virtualenv: Airflow's Edge and Celery executors
    # (celery 5.7 lacks what the Celery provider 3.26 imports from it).
    airflow_providers: [apache-airflow-providers-fab, apache-airflow-providers-postgres, apache-airflow-providers-git,
                        psycopg2-binary, apache-airflow-providers-edge3==5.1.0, apache-airflow-providers-celery==3.26.0,
                        "celery[redis]==5.6.3"]
  children:
    airflow_db: {hosts: {qa-bench-core: {}}}
    airflow_core: {hosts: {qa-bench-core: {}}}
    airflow_temporal: {hosts: {qa-bench-core: {}}}
    airflow_workers: {hosts: {qa-bench-w1: {}, qa-bench-w2: {}}}
INV
qa_log "deploying the bench stack (log: $work/log)"
ANSIBLE_PIPELINING=true ansible-playbook -i "$work/inventory.yml" playbooks/site.yml >>"$work/log" 2>&1
# CeleryExecutor's broker, from Debian's package, on the bench network only (its hosts are the bench's own).
qa_sudo podman exec qa-bench-core bash -ec '
  command -v redis-server >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null
  sed -i -e "s/^bind .*/bind 0.0.0.0/" -e "s/^protected-mode .*/protected-mode no/" /etc/redis/redis.conf
  systemctl restart redis-server' >>"$work/log" 2>&1
qa_sudo podman cp qa-bench-core:/etc/airflow/ca.crt "$work/ca.crt"
QA_API_CA="$work/ca.crt" QA_BENCH_INVENTORY="$work/inventory.yml" QA_UP_NAME=qa-bench-core QA_UI_PORT=$port QA_CACHE="$QA_CACHE" \
  python3 hack/bench_temporal.py
if [ "${QA_BENCH_KEEP:-}" != 1 ]; then
  qa_sudo podman rm -f -t 10 "${hosts[@]}" >/dev/null
  qa_sudo podman network rm "$net" >/dev/null 2>&1 || true
fi
