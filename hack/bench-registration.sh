#!/usr/bin/env bash
# Prints the registration figures, measured in this run against the `make up` test host:
#   - 500 connections declared in ONE qubinode.airflow.airflow_connection task: first apply and
#     no-op re-run (ansible-playbook wall time, Ansible's own start-up included)
#   - the naive way on the same host: a loop of `airflow connections add` over the same objects
#   - the ratios between them
# QA_BENCH_N (500) objects; QA_BENCH_NAIVE_N (= QA_BENCH_N) of them through the CLI loop, the
# per-call time scaled to QA_BENCH_N when fewer are run (the note says so).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$QA_ROOT"
n=${QA_BENCH_N:-500}
naive_n=${QA_BENCH_NAIVE_N:-$n}
name=${QA_UP_NAME:-qubinode-airflow-dev}
work="$QA_CACHE/bench-registration"
mkdir -p "$work"
log="$work/log"; : >"$log"

qa_sudo podman container exists "$name" || hack/up.sh >>"$log" 2>&1
inventory="$QA_CACHE/up/inventory.yml"

# One task declaring N connections, with passwords, run on the test host against 127.0.0.1.
python3 - "$n" >"$work/vars.yml" <<'PY'
import json, sys
n = int(sys.argv[1])
conns = [dict(conn_id="bench_%04d" % i, conn_type="postgres", host="db%d.example.com" % i, port=5432,
              login="etl", password="bench-pass-%d" % i, schema="dw", extra={"sslmode": "require"})
         for i in range(n)]
print(json.dumps({"bench_connections": conns}))
PY
cat >"$work/play.yml" <<'YML'
- name: Declare the benchmark connections
  hosts: airflow_core[0]
  become: true
  gather_facts: false
  roles:
    - role: qubinode.airflow.secrets
  tasks:
    - name: Connections in one task
      qubinode.airflow.airflow_connection:
        api_password: "{{ secrets_values.airflow_admin_password }}"
        connections: "{{ bench_connections | map('combine', {'state': bench_state}) | list }}"
      vars:
        bench_state: present
YML
# The JSON callback gives the task's own duration next to the playbook's wall time.
play() {
  ANSIBLE_PIPELINING=true ANSIBLE_STDOUT_CALLBACK=ansible.posix.json \
    ansible-playbook -i "$inventory" "$work/play.yml" -e @"$work/vars.yml" "$@" >"$work/last.json" 2>>"$log"
}
ms() { local t0; t0=$(date +%s%N); "$@"; echo $(( ($(date +%s%N) - t0) / 1000000 )); }
# "<task ms> <changed>" of the airflow_connection task in the last run
task() {
  python3 - "$work/last.json" <<'PY'
import json, sys
from datetime import datetime
run = json.load(open(sys.argv[1]))
for play in run["plays"]:
    for t in play["tasks"]:
        if t["task"]["name"] == "Connections in one task":
            d = t["task"]["duration"]
            f = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
            res = next(iter(t["hosts"].values()))
            print(int((f(d["end"]) - f(d["start"])).total_seconds() * 1000), res.get("changed", False))
PY
}

play -e bench_state=absent                      # start from none of them
first=$(ms play); read -r first_task first_changed <<<"$(task)"
rerun=$(ms play); read -r rerun_task rerun_changed <<<"$(task)"
[ "$first_changed" = True ] && [ "$rerun_changed" = False ] ||
  { echo "expected changed then unchanged, got $first_changed/$rerun_changed; see $work/last.json" >&2; exit 1; }
play -e bench_state=absent

# The naive way: one CLI process per connection, on the same host.
script=$(python3 - "$naive_n" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    print("/usr/local/bin/airflow connections add bench_%04d --conn-type postgres --conn-host db%d.example.com "
          "--conn-port 5432 --conn-login etl --conn-password bench-pass-%d --conn-schema dw "
          "--conn-extra '{\"sslmode\": \"require\"}' >/dev/null" % (i, i, i))
PY
)
naive=$(ms qa_sudo podman exec -i "$name" bash -e <<<"$script")
added=$(qa_sudo podman exec "$name" /usr/local/bin/airflow connections list -o plain 2>/dev/null | grep -c '^bench_' || true)
[ "$added" -eq "$naive_n" ] || { echo "CLI loop added $added of $naive_n connections" >&2; exit 1; }
play -e bench_state=absent
naive_full=$(( naive * n / naive_n ))

cat <<OUT
registration benchmark, $n connections, host $name, $(nproc) cores
                                             task      whole playbook
  one airflow_connection task, first apply   ${first_task} ms  ${first} ms
  same task, no-op re-run (changed=0)        ${rerun_task} ms  ${rerun} ms
  loop of 'airflow connections add'          ${naive_full} ms  ($naive_n calls run, $(( naive / naive_n )) ms per call)
  ratio loop / first apply (task)            $(awk -v a="$naive_full" -v b="$first_task" 'BEGIN {printf "%.0f", a / b}')x
  ratio loop / no-op re-run (task)           $(awk -v a="$naive_full" -v b="$rerun_task" 'BEGIN {printf "%.0f", a / b}')x
  ratio loop / first apply (playbook)        $(awk -v a="$naive_full" -v b="$first" 'BEGIN {printf "%.1f", a / b}')x
OUT
