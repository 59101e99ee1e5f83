"""Prints the Temporal engine figures on the hosts hack/bench-temporal.sh deployed.

Every engine gets the same 8 task slots, on the same stack, in the same run:
  local     LocalExecutor, [core] parallelism 8 (its pool of 8 task processes). Airflow 3.3's
            LocalExecutor does not count what it runs against parallelism, so the scheduler queues
            every ready task to it and its pool of 8 admits them in turn.
  temporal1 the Temporal executor, one worker host running 8 attempts at once (the other stopped)
  temporal2 the Temporal executor, two worker hosts running 4 each
  edge      EdgeExecutor (apache-airflow-providers-edge3), one edge worker of concurrency 8 on a
            worker host, talking to the api-server over HTTPS
  celery    CeleryExecutor (apache-airflow-providers-celery), one Celery worker of concurrency 8 on a
            worker host, Redis (Debian's package) on the core host as broker and result backend
  The remote engines (Temporal, Edge, Celery) get the same admission: [core] parallelism 32, four times
  the 8 slots, as the airflow role sets it for Temporal: 8 attempts run and up to 24 wait in the engine's
  queue (QA_BENCH_PARALLELISM sets another).
Workloads: `noop` (100 independent no-op tasks: throughput) and `chain` (20 dependent no-op tasks:
latency per task). Timing is Airflow's own: the run's first queued_when to its last end_date.
CPU is the CPU time of all three test hosts' cgroups during the run, per task; and, to show where it goes,
per systemd unit (summed over the hosts, from /proc: a process's time and that of the children it reaped).
Each round runs every engine once, in turn (a discarded warm-up run after each switch); QA_BENCH_ROUNDS
rounds (5); QA_BENCH_ENGINES picks engines (all). Printed: median and range per engine and workload,
then the medians as ratios on one line.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from datetime import datetime

from bench_lib import Api

INVENTORY = os.environ["QA_BENCH_INVENTORY"]
CORE, WORKERS = "qa-bench-core", ["qa-bench-w1", "qa-bench-w2"]
HOSTS = [CORE] + WORKERS
N = int(os.environ.get("QA_BENCH_TASKS", "100"))
CHAIN = int(os.environ.get("QA_BENCH_CHAIN", "20"))
ROUNDS = int(os.environ.get("QA_BENCH_ROUNDS", "5"))
SLOTS = 8
# N no-op tasks side by side, as many at once as the DAG allows.
FAN = '''import pendulum
from airflow.sdk import dag, task


@dag(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
     max_active_tasks={n})
def fan():
    @task
    def noop(i: int) -> None:
        return None

    for i in range({n}):
        noop.override(task_id="noop_%03d" % i)(i)


fan()
'''
DAGS = {
    "bench_noop": FAN.format(dag_id="bench_noop", n=N),
    "bench_chain": '''import pendulum
from airflow.sdk import chain, dag, task


@dag(dag_id="bench_chain", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def bench_chain():
    @task
    def step() -> None:
        return None

    chain(*[step.override(task_id="step_%02d" % i)() for i in range({n})])


bench_chain()
'''.format(n=CHAIN),
    # One task per slot before each round's measured runs: every worker slot and runner is warm.
    "bench_warm": FAN.format(dag_id="bench_warm", n=SLOTS),
}
SCHEDULER_DROPIN = "/etc/systemd/system/airflow-scheduler.service.d/bench.conf"
API_DROPIN = "/etc/systemd/system/airflow-api-server.service.d/bench.conf"
WORKER_DROPIN = "/etc/systemd/system/airflow-temporal-worker.service.d/bench.conf"
# The scheduler's settings for one engine: a file read after orchestrator.env, whose values it overrides.
SCHEDULER_ENV = "/etc/airflow/bench.env"
# What an Edge or Celery worker reads besides airflow.env (root:airflow 0640: it holds the JWT secret).
WORKER_ENV = "/etc/airflow/bench-worker.env"
REMOTE_PARALLELISM = int(os.environ.get("QA_BENCH_PARALLELISM", str(4 * SLOTS)))
ENGINES = ["local", "temporal1", "temporal2", "edge", "celery"]
EXECUTORS = {
    "edge": "airflow.providers.edge3.executors.EdgeExecutor",
    "celery": "airflow.providers.celery.executors.celery_executor.CeleryExecutor",
}
BROKER = "redis://%s:6379/0" % CORE
RESULTS = "redis://%s:6379/1" % CORE


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


def dropin(host, path, text):
    """Write (or with text None remove) a systemd drop-in; reload systemd."""
    if text is None:
        on(host, "rm -f %s; systemctl daemon-reload" % path)
    else:
        on(host, "mkdir -p $(dirname {p}) && printf '%s' > {p} && systemctl daemon-reload".format(p=path)
           % text.replace("'", ""))


def write_env(host, path, values):
    """A root:airflow 0640 environment file (values come from the stack's own files; no quotes in them)."""
    body = "".join("%s=%s\n" % item for item in sorted(values.items()))
    on(host, "umask 027; printf '%%s' '%s' > %s; chown root:airflow %s" % (body.replace("'", ""), path, path))


def worker_command(host):
    """The path of the Temporal worker's command on `host` (in the virtualenv's bin directory)."""
    return on(host, "systemctl show -p ExecStart airflow-temporal-worker | grep -o 'path=[^ ;]*' | cut -d= -f2")


def remote_worker(name):
    """Start the Edge or Celery worker of `name` on the first worker host (a transient unit with the
    services' user, environment and working directory); None stops both."""
    host = WORKERS[0]
    on(host, "systemctl stop bench-edge-worker bench-celery-worker 2>/dev/null || true; "
             "systemctl reset-failed bench-edge-worker bench-celery-worker 2>/dev/null || true")
    if name is None:
        return
    airflow = os.path.join(os.path.dirname(worker_command(host)), "airflow")
    argv = [airflow, "edge", "worker", "--concurrency", str(SLOTS)] if name == "edge" else \
        [airflow, "celery", "worker", "--concurrency", str(SLOTS)]
    on(host, "systemd-run --unit bench-%s-worker --uid airflow --gid airflow --working-directory /var/lib/airflow "
             "-p EnvironmentFile=/etc/airflow/airflow.env -p EnvironmentFile=%s %s" % (name, WORKER_ENV, " ".join(argv)))


def switch(name):
    """Set the stack up for one engine configuration (see the module's docstring)."""
    temporal = name.startswith("temporal")
    settings = {"AIRFLOW__CORE__PARALLELISM": SLOTS if name == "local" else REMOTE_PARALLELISM}
    if name in EXECUTORS:
        settings["AIRFLOW__CORE__EXECUTOR"] = EXECUTORS[name]
        settings.update(AIRFLOW__CELERY__BROKER_URL=BROKER, AIRFLOW__CELERY__RESULT_BACKEND=RESULTS)
    write_env(CORE, SCHEDULER_ENV, settings)
    engine("temporal" if temporal else "airflow")
    on(CORE, "systemctl restart airflow-scheduler")
    remote_worker(name if name in EXECUTORS else None)
    if name == "temporal1":
        dropin(WORKERS[0], WORKER_DROPIN, "[Service]\nExecStart=\nExecStart=%s --concurrency %d\n"
               % (worker_command(WORKERS[0]), SLOTS))
        on(WORKERS[0], "systemctl restart airflow-temporal-worker")
        on(WORKERS[1], "systemctl stop airflow-temporal-worker")
    else:
        dropin(WORKERS[0], WORKER_DROPIN, None)
        for host in WORKERS:
            on(host, "systemctl restart airflow-temporal-worker" if temporal else "systemctl stop airflow-temporal-worker")


def setup_engines():
    """Once: the scheduler reads SCHEDULER_ENV; the api-server serves the Edge workers' API; the Edge and
    Celery workers get the api-server's JWT secret (Edge signs its calls with it), the Edge API's URL, the
    broker and the stack's CA (the api-server's certificate is signed by it)."""
    dropin(CORE, SCHEDULER_DROPIN, "[Service]\nEnvironmentFile=-%s\n" % SCHEDULER_ENV)
    write_env(CORE, SCHEDULER_ENV, {})
    dropin(CORE, API_DROPIN, "[Service]\nEnvironment=AIRFLOW__EDGE__API_ENABLED=True\n")
    on(CORE, "systemctl restart airflow-api-server")
    jwt = on(CORE, "grep '^AIRFLOW__API_AUTH__JWT_SECRET=' /etc/airflow/airflow.env").split("=", 1)[1].strip('"')
    execution = on(WORKERS[0], "sed -n 's/^execution_api_server_url *= *//p' /etc/airflow/airflow.cfg")
    write_env(WORKERS[0], WORKER_ENV, {
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt,
        "AIRFLOW__EDGE__API_URL": execution.replace("/execution/", "/edge_worker/v1/rpcapi"),
        "AIRFLOW__CELERY__BROKER_URL": BROKER, "AIRFLOW__CELERY__RESULT_BACKEND": RESULTS,
        "SSL_CERT_FILE": "/etc/airflow/ca.crt", "REQUESTS_CA_BUNDLE": "/etc/airflow/ca.crt"})


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


def cpu_seconds():
    """CPU time of every test host's cgroup (cgroup v2 cpu.stat, or v1 cpuacct)."""
    total = 0.0
    for host in HOSTS:
        out = on(host, "if [ -r /sys/fs/cgroup/cpu.stat ]; then awk '$1 == \"usage_usec\" {print $2 * 1000}' "
                       "/sys/fs/cgroup/cpu.stat; else cat /sys/fs/cgroup/cpuacct/cpuacct.usage; fi")
        total += int(float(out)) / 1e9
    return total


# Prints {unit: CPU-seconds} of the processes alive on a host, each under the systemd unit of its cgroup
# (cgroup v1's name=systemd hierarchy, or v2's); a process counts its own time and its reaped children's.
UNIT_CPU = r'''
import json, os
hz = os.sysconf("SC_CLK_TCK")
units = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open("/proc/%s/stat" % pid) as f:
            stat = f.read().rsplit(")", 1)[1].split()
        with open("/proc/%s/cgroup" % pid) as f:
            groups = dict(line.split(":", 2)[1:] for line in f.read().splitlines())
    except (OSError, ValueError):
        continue
    path = groups.get("name=systemd", groups.get("", "/")).rsplit("/", 1)[-1] or "/"
    unit = path[:-len(".service")] if path.endswith(".service") else path
    units[unit] = units.get(unit, 0) + sum(int(x) for x in stat[11:15]) / hz
print(json.dumps(units))
'''


def unit_cpu():
    """CPU-seconds per systemd unit, summed over the test hosts."""
    units = {}
    for host in HOSTS:
        for unit, seconds in json.loads(on(host, "python3 -c %s" % shlex.quote(UNIT_CPU))).items():
            units[unit] = units.get(unit, 0) + seconds
    return units


def run_once(api, dag_id):
    """(seconds from the first queued to the last end, CPU-seconds of the hosts, where the time went, CPU-seconds
    per unit) of one run of dag_id."""
    units_before = unit_cpu()
    before = cpu_seconds()
    status, run = api.call("POST", "dags/%s/dagRuns" % dag_id, {"logical_date": None})
    assert status == 200, (status, run)
    while True:
        _s, state = api.call("GET", "dags/%s/dagRuns/%s" % (dag_id, run["dag_run_id"]))
        if state["state"] in ("success", "failed"):
            break
        time.sleep(0.5)
    cpu = cpu_seconds() - before
    units_after = unit_cpu()
    per_unit = {unit: units_after[unit] - units_before.get(unit, 0) for unit in units_after}
    if state["state"] != "success":
        raise SystemExit("%s run %s ended %s" % (dag_id, run["dag_run_id"], state["state"]))
    _s, body = api.call("GET", "dags/%s/dagRuns/%s/taskInstances?limit=%d" % (dag_id, run["dag_run_id"], N + 10))
    when = datetime.fromisoformat
    tis = body["task_instances"]
    first = min(when(ti["queued_when"]) for ti in tis if ti.get("queued_when"))
    last = max(when(ti["end_date"]) for ti in tis)
    wall = (last - first).total_seconds()
    # Where the time went: attempts running on average (of the 8 slots), and per task the wait from queued
    # to its start on a worker and its run from start to end.
    runs = [(when(ti["end_date"]) - when(ti["start_date"])).total_seconds() for ti in tis]
    waits = [(when(ti["start_date"]) - when(ti["queued_when"])).total_seconds() for ti in tis if ti.get("queued_when")]
    detail = "%.1f running on average, queued to start %.2f s, start to end %.2f s (medians)" % (
        sum(runs) / wall, statistics.median(waits), statistics.median(runs))
    return wall, cpu, detail, per_unit


def rss_mib(host, pattern):
    out = on(host, "ps -eo rss=,args= | grep -E '%s' | grep -v grep || true" % pattern)
    return sum(int(line.split()[0]) for line in out.splitlines() if line.strip()) / 1024


def summary(values):
    return "%6.1f s  (%.1f-%.1f)" % (statistics.median(values), min(values), max(values))


def main():
    for dag_id, body in DAGS.items():
        quoted = body.replace("'", "'\\''")
        for host in HOSTS:
            on(host, "printf '%%s' '%s' > /var/lib/airflow/dags/%s.py; chown airflow /var/lib/airflow/dags/%s.py"
               % (quoted, dag_id, dag_id))
    api = Api(on(CORE, "grep '^airflow_admin_password:' /etc/qubinode-airflow/secrets.yml").split(":", 1)[1]
              .strip().strip("'\""))
    for dag_id in DAGS:
        deadline = time.monotonic() + 600
        while api.call("GET", "dags/" + dag_id)[0] != 200 and time.monotonic() < deadline:
            time.sleep(3)
        api.call("PATCH", "dags/" + dag_id, {"is_paused": False})

    setup_engines()
    engines = [name for name in os.environ.get("QA_BENCH_ENGINES", ",".join(ENGINES)).split(",") if name]
    if set(engines) - set(ENGINES) or "local" not in engines:
        raise SystemExit("QA_BENCH_ENGINES is a comma-separated list of %s that includes local (the ratios' "
                         "base); it is %r" % (", ".join(ENGINES), ",".join(engines)))
    noop = {name: [] for name in engines}
    chain = {name: [] for name in engines}
    for round_ in range(ROUNDS):
        for name in engines:
            switch(name)
            wait_healthy(api)
            run_once(api, "bench_warm")
            noop[name].append(run_once(api, "bench_noop"))
            chain[name].append(run_once(api, "bench_chain"))
            print("round %d %-9s noop %5.1f s %5.1f CPU-s, chain %5.1f s; noop: %s" % (
                round_ + 1, name, noop[name][-1][0], noop[name][-1][1], chain[name][-1][0], noop[name][-1][2]),
                flush=True)
    switch("temporal2")
    remote_worker(None)
    time.sleep(int(os.environ.get("QA_IDLE_SECONDS", "60")))
    server = rss_mib(CORE, "temporal server start-dev")
    worker = rss_mib(WORKERS[0], "qubinode-temporal-worker")
    runner = rss_mib(WORKERS[0], "qubinode_airflow.temporal.forkserver")

    median = statistics.median
    wall = {name: [run[0] for run in noop[name]] for name in engines}
    cpu = {name: [run[1] / N for run in noop[name]] for name in engines}
    per_step = {name: [run[0] / CHAIN for run in chain[name]] for name in engines}
    print("Temporal engine, %d cores, %d task slots per engine, %d rounds; median (range)" % (
        os.cpu_count(), SLOTS, ROUNDS))
    labels = {"local": "LocalExecutor", "temporal1": "Temporal, one worker host x 8",
              "temporal2": "Temporal, two worker hosts x 4", "edge": "EdgeExecutor, one worker x 8",
              "celery": "CeleryExecutor, one worker x 8"}
    print("  %d independent no-op tasks, first queued to last end:" % N)
    for name in engines:
        print("    %-32s %s   %.2f CPU-s per task" % (labels[name], summary(wall[name]), median(cpu[name])))
    print("  of which, per no-op task and systemd unit (all hosts, medians; 0.005 CPU-s and more):")
    for name in engines:
        units = {unit for run in noop[name] for unit in run[3]}
        shares = {unit: median([run[3].get(unit, 0) for run in noop[name]]) / N for unit in units}
        print("    %-32s %s" % (labels[name], ", ".join(
            "%s %.3f" % item for item in sorted(shares.items(), key=lambda item: -item[1]) if item[1] >= 0.005)))
    print("  chain of %d no-op tasks, per task:" % CHAIN)
    for name in engines:
        print("    %-32s %s" % (labels[name], summary(per_step[name])))
    print("  idle RSS: Temporal server %.0f MiB, one worker process %.0f MiB, its task runner %.0f MiB"
          % (server, worker, runner))
    temporal = [name for name in engines if name.startswith("temporal")]
    if not temporal:
        return 0
    best = min(temporal, key=lambda name: median(wall[name]))
    # Throughput ratios: the other engine's time over Temporal's (above 1: Temporal is faster).
    ratios = ["temporal/local=%.2f" % (median(wall["local"]) / median(wall[best]))]
    ratios += ["temporal/%s=%.2f" % (name, median(wall[name]) / median(wall[best]))
               for name in ("edge", "celery") if name in engines]
    ratios += ["cpu_per_task/local=%.2f" % (median(cpu[best]) / median(cpu["local"])),
               "chain/local=%.2f" % (median(per_step[best]) / median(per_step["local"]))]
    print("RATIOS %s (temporal: %s; throughput ratios above 1 mean Temporal is faster)"
          % (" ".join(ratios), labels[best]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
