#!/usr/bin/env bash
# Prints the day-2 figures of a single-host stack on Airflow 3.3.1 whose metadata database holds
# QA_BENCH_TIS (10000) task instances, measured in this run on this machine:
#   - playbooks/backup.yml wall time, the backup command's own time, the set's size (and the dump's)
#   - the same database dumped by hand with pg_dump -Fc (what a user would run without the collection)
#   - playbooks/restore.yml wall time after the database is dropped (checks, restore, converge, health),
#     and pg_restore of the same dump by hand
#   - an upgrade to 3.3.2 whose migration fails (the fault of the upgrade test): the play's wall time and
#     how long the API did not answer healthy before the rollback had 3.3.1 serving again
#   - the upgrade to 3.3.2: wall time and API downtime, against a plain restart of the services (the
#     least downtime any change of the virtualenv costs)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$QA_ROOT"
tis=${QA_BENCH_TIS:-10000}
name=qa-bench-day2
net=qubinode-airflow-bench-day2
log="$QA_CACHE/bench-day2.log"
dir="$QA_CACHE/bench-day2"
inventory="$dir/inventory.yml"
mkdir -p "$dir"; chmod 0700 "$dir"; : >"$log"

if [ ! -s "$dir/key.pem" ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj /CN=qubinode-airflow-bench-day2 \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>>"$log"
fi

cleanup() { qa_sudo podman rm -f "$name" >/dev/null 2>&1 || true; qa_sudo podman network rm "$net" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
qa_sudo podman network create "$net" >/dev/null
qa_sudo podman run -d --name "$name" --hostname "$name" --systemd=always --cap-add SYS_ADMIN --network "$net" \
  -v "$QA_PIP_CACHE:/root/.cache/pip" -v "$QA_APT_CACHE:/var/cache/apt/archives" \
  -v "$QA_CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" "$QA_IMAGE" /sbin/init >/dev/null
sleep 3

cat >"$inventory" <<INV
all:
  vars:
    ansible_connection: containers.podman.podman
    airflow_version: "3.3.1"
    # the bench's DAG file is listed within 30 s instead of 300 s
    airflow_config: {dag_processor: {refresh_interval: 30}}
    backup_secrets_certificate: "{{ lookup('ansible.builtin.file', '$dir/cert.pem') }}"
  children:
    airflow_db: {hosts: {$name: {}}}
    airflow_core: {hosts: {$name: {}}}
INV

on_host() { qa_sudo podman exec "$name" "$@"; }
on_host_stdin() { qa_sudo podman exec -i "$name" "$@"; }
psql_airflow() { on_host_stdin runuser -u postgres -- psql -X -q -At -d airflow -v ON_ERROR_STOP=1 "$@"; }
play() { ANSIBLE_PIPELINING=true ansible-playbook -i "$inventory" "$@" >>"$log" 2>&1 || { echo "ansible-playbook $* failed; see $log" >&2; exit 1; }; }
play_fails() { if ANSIBLE_PIPELINING=true ansible-playbook -i "$inventory" "$@" >>"$log" 2>&1; then echo "ansible-playbook $* did not fail; see $log" >&2; exit 1; fi; }
secs() { local t0; t0=$(date +%s.%N); "$@"; awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}'; }

play playbooks/site.yml

# A DAG of 10 tasks run once for real, then its run and task instances copied in SQL up to $tis.
on_host_stdin sh -c 'cat > /var/lib/airflow/dags/qa_bench.py' <<'PY'
import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def qa_bench():
    def noop():
        pass

    for i in range(10):
        task(task_id=f"t{i}")(noop)()


qa_bench()
PY
on_host chown airflow:airflow /var/lib/airflow/dags/qa_bench.py
for _ in $(seq 60); do
  on_host /usr/local/bin/airflow dags details qa_bench >>"$log" 2>&1 && break
  sleep 5
done
on_host /usr/local/bin/airflow dags unpause qa_bench >>"$log" 2>&1
on_host /usr/local/bin/airflow dags trigger qa_bench >>"$log" 2>&1
for _ in $(seq 120); do
  [ "$(psql_airflow -c "SELECT count(*) FROM task_instance WHERE dag_id = 'qa_bench' AND state = 'success'")" = 10 ] && break
  sleep 5
done
psql_airflow >>"$log" 2>&1 <<SQL
DO \$\$
DECLARE
  run_cols text; ti_cols text;
BEGIN
  SELECT string_agg(quote_ident(column_name), ', ') INTO run_cols FROM information_schema.columns
   WHERE table_schema = 'public' AND table_name = 'dag_run' AND column_name NOT IN ('id', 'run_id', 'logical_date');
  SELECT string_agg(quote_ident(column_name), ', ') INTO ti_cols FROM information_schema.columns
   WHERE table_schema = 'public' AND table_name = 'task_instance' AND column_name NOT IN ('id', 'run_id');
  EXECUTE format('INSERT INTO dag_run (run_id, logical_date, %s) SELECT %L || g, r.logical_date + g * interval %L, %s
                  FROM generate_series(1, %s) g, (SELECT * FROM dag_run WHERE dag_id = %L LIMIT 1) r',
                 run_cols, 'bench_', '1 minute', regexp_replace(run_cols, '([^, ]+)', 'r.\1', 'g'), $tis / 10 - 1, 'qa_bench');
  EXECUTE format('INSERT INTO task_instance (id, run_id, %s) SELECT gen_random_uuid(), d.run_id, %s
                  FROM dag_run d, (SELECT * FROM task_instance WHERE dag_id = %L) t
                  WHERE d.dag_id = %L AND d.run_id LIKE %L',
                 ti_cols, regexp_replace(ti_cols, '([^, ]+)', 't.\1', 'g'), 'qa_bench', 'qa_bench', 'bench\_%');
END
\$\$;
SQL
count=$(psql_airflow -c "SELECT count(*) FROM task_instance")

backup=$(secs play playbooks/backup.yml)
status=$(on_host cat /var/lib/qubinode-airflow/backup-status.json)
set_name=$(echo "$status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["set"])')
command_s=$(echo "$status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
set_bytes=$(echo "$status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes"])')
dump_bytes=$(on_host stat -c %s "/var/backups/qubinode-airflow/$set_name/airflow.dump")
by_hand=$(secs on_host sh -c 'runuser -u postgres -- pg_dump --format=custom --dbname airflow > /root/by-hand.dump')

on_host systemctl stop airflow-api-server airflow-scheduler airflow-dag-processor airflow-triggerer
on_host runuser -u postgres -- psql -X -q -c 'DROP DATABASE airflow WITH (FORCE)' >>"$log"
python3 -c 'import json,sys; print(json.dumps({"restore_secrets_key": open(sys.argv[1]).read()}))' "$dir/key.pem" >"$dir/restore-vars.json"
chmod 0600 "$dir/restore-vars.json"
restore=$(secs play playbooks/restore.yml -e "@$dir/restore-vars.json")
restored=$(psql_airflow -c "SELECT count(*) FROM task_instance")
on_host systemctl stop airflow-api-server airflow-scheduler airflow-dag-processor airflow-triggerer
on_host runuser -u postgres -- psql -X -q -c 'DROP DATABASE airflow WITH (FORCE)' >>"$log"
restore_by_hand=$(secs on_host sh -c 'runuser -u postgres -- pg_restore --create --exit-on-error --dbname postgres < /root/by-hand.dump')

# Upgrades. A poller in the host asks the API for its health every 0.5 s; the API's downtime is the time
# between the first answer that is not a healthy one and the next healthy one.
play playbooks/site.yml
on_host_stdin sh -c 'cat > /root/poll.py' <<'PY'
import json
import ssl
import time
import urllib.request

CA = ssl.create_default_context(cafile="/etc/airflow/ca.crt")

with open("/root/poll.log", "w") as log:
    while True:
        t = time.time()
        try:
            with urllib.request.urlopen("https://127.0.0.1:8080/api/v2/monitor/health", timeout=2, context=CA) as r:
                h = json.load(r)
            ok = all(h[c]["status"] == "healthy" for c in ("metadatabase", "scheduler"))
        except Exception:
            ok = False
        log.write("%.2f %d\n" % (t, ok))
        log.flush()
        time.sleep(max(0.0, 0.5 - (time.time() - t)))
PY
downtime() {  # seconds the API was not healthy during "$@"
  qa_sudo podman exec -d "$name" python3 /root/poll.py >/dev/null
  sleep 2
  "$@"
  sleep 2
  on_host pkill -f /root/poll.py || true
  on_host cat /root/poll.log | awk '$2 == 0 && !down {down = $1} $2 == 1 && down {total += $1 - down; down = 0}
                                    {last = $1} END {if (down) total += last - down; printf "%.1f", total}'
}
restart_all() { on_host systemctl restart airflow-api-server airflow-scheduler airflow-dag-processor airflow-triggerer; \
                until on_host python3 -c 'import ssl, urllib.request; urllib.request.urlopen("https://127.0.0.1:8080/api/v2/monitor/health", timeout=2, context=ssl.create_default_context(cafile="/etc/airflow/ca.crt"))' 2>/dev/null; do sleep 0.5; done; }
restart_down=$(downtime restart_all)

on_host install -d -o root -g airflow -m 0755 /var/lib/airflow/config
on_host_stdin sh -c 'cat > /var/lib/airflow/config/airflow_local_settings.py' <<'PY'
import importlib.metadata
import sys

if sys.argv[1:2] == ["db"] and importlib.metadata.version("apache-airflow") == "3.3.2":
    raise RuntimeError("bench: the database migration of this release fails")
PY
t0=$(date +%s.%N)
failed_down=$(downtime play_fails playbooks/site.yml -e airflow_version=3.3.2)
failed_wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a - 4}')
after_failed=$(on_host /usr/local/bin/airflow version | tail -1)
on_host rm -rf /var/lib/airflow/config
t0=$(date +%s.%N)
upgrade_down=$(downtime play playbooks/site.yml -e airflow_version=3.3.2)
upgrade_wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a - 4}')
after_upgrade=$(on_host /usr/local/bin/airflow version | tail -1)
upgraded_tis=$(psql_airflow -c "SELECT count(*) FROM task_instance")

mib() { awk -v b="$1" 'BEGIN{printf "%.1f", b / 1048576}'; }
printf '%-58s %8s\n' "task instances in the metadata database" "$count"
printf '%-58s %8.1f\n' "backup.yml wall time (s)" "$backup"
printf '%-58s %8s\n' "  of which the backup command (s)" "$command_s"
printf '%-58s %8.1f\n' "pg_dump -Fc of the metadata database by hand (s)" "$by_hand"
printf '%-58s %8s\n' "backup set (MiB), all three databases and the store" "$(mib "$set_bytes")"
printf '%-58s %8s\n' "  of which the metadata database's dump (MiB)" "$(mib "$dump_bytes")"
printf '%-58s %8.1f\n' "restore.yml wall time, checks + restore + converge (s)" "$restore"
printf '%-58s %8s\n' "  task instances after the restore" "$restored"
printf '%-58s %8.1f\n' "pg_restore of the same dump by hand (s)" "$restore_by_hand"
printf '%-58s %8s\n' "restore.yml / pg_restore by hand" "$(awk -v a="$restore" -v b="$restore_by_hand" 'BEGIN{printf "%.1f", a/b}')"
printf '%-58s %8.1f\n' "failed upgrade 3.3.1 -> 3.3.2, play wall time (s)" "$failed_wall"
printf '%-58s %8.1f\n' "  API down until 3.3.1 served again (s)" "$failed_down"
printf '%-58s %8s\n' "  version serving after the rollback" "$after_failed"
printf '%-58s %8.1f\n' "upgrade 3.3.1 -> 3.3.2, play wall time (s)" "$upgrade_wall"
printf '%-58s %8.1f\n' "  API down (s)" "$upgrade_down"
printf '%-58s %8s\n' "  version serving, task instances kept" "$after_upgrade, $upgraded_tis"
printf '%-58s %8.1f\n' "plain restart of the four services, API down (s)" "$restart_down"
printf '%-58s %8s\n' "upgrade downtime / plain restart downtime" "$(awk -v a="$upgrade_down" -v b="$restart_down" 'BEGIN{printf "%.1f", a/b}')"
