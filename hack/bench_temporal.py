"""Prints the Temporal engine figures on the hosts hack/bench-temporal.sh deployed.

100 no-op Python tasks in one DAG run, wall time from trigger to `success`, in one run of this script:
  LocalExecutor (engine airflow), Temporal executor with one worker host and with two (the second
  gives the Temporal engine as many task slots as LocalExecutor has).
Engines are switched with the collection's own airflow_engine module on every host. Then the
idle RSS of the Temporal server, of a worker process and of its task runner, and where each task instance spends its time
(medians of Airflow's own queued, start and end timestamps).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from datetime import datetime

from bench_lib import Api

INVENTORY = os.environ["QA_BENCH_INVENTORY"]
CORE, WORKERS = "qa-bench-core", ["qa-bench-w1", "qa-bench-w2"]
N = int(os.environ.get("QA_BENCH_TASKS", "100"))
DAG = '''import pendulum
from airflow.sdk import dag, task


@dag(dag_id="bench_noop", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
     max_active_tasks={n})
def bench_noop():
    @task
    def noop(i: int) -> None:
        return None

    for i in range({n}):
        noop.override(task_id="noop_%03d" % i)(i)


bench_noop()
'''


def on(host, script):
    return subprocess.run(["podman", "exec", "-i", host, "bash", "-e"], input=script, text=True,
                          capture_output=True, check=True).stdout.strip()


def engine(name):
    play = os.path.join(os.path.dirname(INVENTORY), "engine.yml")
    with open(play, "w") as f:
        f.write("""
- hosts: airflow_core:airflow_workers
  become: true
  gather_facts: false
  tasks:
    - qubinode.airflow.airflow_engine:
        engine: %s
        temporal_address: qa-bench-core:7233
""" % name)
    subprocess.run(["ansible-playbook", "-i", INVENTORY, play], check=True, capture_output=True,
                   env=dict(os.environ, ANSIBLE_PIPELINING="true"))


def wait_healthy(api):
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            status, health = api.call("GET", "monitor/health")
            if status == 200 and all((v or {}).get("status") in ("healthy", None) for v in health.values()):
                return
        except OSError:
            pass
        time.sleep(2)
    raise SystemExit("Airflow did not come back healthy")


def run_once(api):
    status, run = api.call("POST", "dags/bench_noop/dagRuns", {"logical_date": None})
    assert status == 200, (status, run)
    start = time.monotonic()
    while True:
        _s, state = api.call("GET", "dags/bench_noop/dagRuns/" + run["dag_run_id"])
        if state["state"] in ("success", "failed"):
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - start
    if state["state"] != "success":
        raise SystemExit("bench_noop run %s ended %s" % (run["dag_run_id"], state["state"]))
    return elapsed, phases(api, run["dag_run_id"])


def phases(api, run_id):
    """Medians over the run's task instances, from Airflow's own timestamps: queued -> running
    (scheduler, executor, engine and task process start) and running -> done (the task process)."""
    _s, body = api.call("GET", "dags/bench_noop/dagRuns/%s/taskInstances?limit=%d" % (run_id, N + 10))
    when = datetime.fromisoformat
    waits, runs = [], []
    for ti in body["task_instances"]:
        if ti.get("queued_when") and ti.get("start_date") and ti.get("end_date"):
            waits.append((when(ti["start_date"]) - when(ti["queued_when"])).total_seconds())
            runs.append((when(ti["end_date"]) - when(ti["start_date"])).total_seconds())
    return statistics.median(waits), statistics.median(runs)


def rss_mib(host, pattern):
    out = on(host, "ps -eo rss=,args= | grep -E '%s' | grep -v grep || true" % pattern)
    return sum(int(line.split()[0]) for line in out.splitlines() if line.strip()) / 1024


def main():
    body = DAG.format(n=N).replace("'", "'\\''")
    for host in [CORE] + WORKERS:
        on(host, "printf '%%s' '%s' > /var/lib/airflow/dags/bench_noop.py; chown airflow /var/lib/airflow/dags/bench_noop.py"
           % body)
    api = Api(on(CORE, "grep '^airflow_admin_password:' /etc/qubinode-airflow/secrets.yml").split(":", 1)[1]
              .strip().strip("'\""))
    deadline = time.monotonic() + 600
    while api.call("GET", "dags/bench_noop")[0] != 200 and time.monotonic() < deadline:
        time.sleep(3)
    api.call("PATCH", "dags/bench_noop", {"is_paused": False})

    figures = {}
    engine("airflow")
    wait_healthy(api)
    figures["local"] = run_once(api)
    engine("temporal")
    wait_healthy(api)
    on(WORKERS[1], "systemctl stop airflow-temporal-worker")
    figures["temporal1"] = run_once(api)
    on(WORKERS[1], "systemctl start airflow-temporal-worker; sleep 5")
    figures["temporal2"] = run_once(api)
    time.sleep(int(os.environ.get("QA_IDLE_SECONDS", "60")))
    server = rss_mib(CORE, "temporal server start-dev")
    worker = rss_mib(WORKERS[0], "qubinode-temporal-worker")
    runner = rss_mib(WORKERS[0], "qubinode_airflow.temporal.forkserver")

    print("Temporal engine, %d no-op tasks in one DAG run, %d cores, scheduler parallelism 8, "
          "worker concurrency 4" % (N, os.cpu_count()))
    wall = {name: value[0] for name, value in figures.items()}
    print("  LocalExecutor, 8 slots                %6.1f s" % wall["local"])
    print("  Temporal executor, one worker host    %6.1f s  (%.2fx LocalExecutor)"
          % (wall["temporal1"], wall["temporal1"] / wall["local"]))
    print("  Temporal executor, two worker hosts   %6.1f s  (%.2fx LocalExecutor, %.2fx one worker)"
          % (wall["temporal2"], wall["temporal2"] / wall["local"], wall["temporal2"] / wall["temporal1"]))
    print("  per task instance, median queued -> running / running -> done:")
    for name, label in (("local", "LocalExecutor"), ("temporal1", "Temporal, one worker"),
                        ("temporal2", "Temporal, two workers")):
        print("    %-34s %5.2f s / %5.2f s" % (label, figures[name][1][0], figures[name][1][1]))
    print("  idle RSS: Temporal server %.0f MiB, one worker process %.0f MiB, its task runner %.0f MiB"
          % (server, worker, runner))
    print("RATIOS temporal1/local=%.2f temporal2/local=%.2f temporal2/temporal1=%.2f"
          % (wall["temporal1"] / wall["local"], wall["temporal2"] / wall["local"], wall["temporal2"] / wall["temporal1"]))


if __name__ == "__main__":
    sys.exit(main())
