"""Prints how long a git push takes to become a runnable DAG, measured on the `make up` test host.

  pinned     push, then one airflow_dag_repo run (validate, pin, refresh request to the dag-processor, wait)
  tracking   pin: false - Airflow follows the branch itself: without a refresh request (the bundle's
             refresh_interval decides) and with PUT /api/v2/parseDagFile/{file_token}

"Runnable" = the API serves the new DAG at the pushed commit (GET /api/v2/dags/<id>). A git daemon on
the test host's loopback serves the repository. Run through hack/bench-dag-repo.sh.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import bench_lib
from bench_lib import HOST, Api, admin_password, git_server, sh, stop_git_server

URL = "git://127.0.0.1:9419/dags.git"
ROUNDS = int(os.environ.get("QA_BENCH_ROUNDS", "3"))
TIMEOUT = 900

DAG = '''import pendulum
from airflow.sdk import dag, task


@dag(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def bench():
    @task
    def noop():
        return 1

    noop()


bench()
'''


def setup_repo():
    git_server("qa-bench-git", "/srv/bench-git", "dags", "/root/bench-work", 9419)
    push("bench_seed")


def push(dag_id):
    body = DAG.format(dag_id=dag_id).replace("'", "'\\''")
    return sh("cd /root/bench-work; printf '%%s' '%s' > dags/%s.py; git add -A; git commit -qm %s; "
              "git push -q origin main; git rev-parse HEAD" % (body, dag_id, dag_id))


def register(pin, state="present"):
    bench_lib.register("bench_repo", URL, pin, state=state)


def wait_served(api, dag_id, commit, start):
    while time.monotonic() - start < TIMEOUT:
        status, dag = api.call("GET", "dags/" + dag_id)
        if status == 200 and (commit is None or dag.get("bundle_version") == commit):
            return time.monotonic() - start
        time.sleep(0.5)
    raise SystemExit("%s was not served within %ss" % (dag_id, TIMEOUT))


def file_token(api, dag_id):
    status, details = api.call("GET", "dags/%s/details" % dag_id)
    assert status == 200, status
    return details["file_token"]


def main():
    api = Api(admin_password())
    setup_repo()
    register(pin=True)

    pinned = []
    for i in range(ROUNDS):
        dag_id = "bench_pinned_%d_%d" % (i, int(time.time()))
        commit = push(dag_id)
        start = time.monotonic()
        register(pin=True)
        pinned.append(wait_served(api, dag_id, commit, start))

    register(pin=False)  # Airflow follows main itself from now on
    wait_served(api, "bench_seed", None, time.monotonic())
    with_request = []
    for i in range(ROUNDS):
        dag_id = "bench_request_%d_%d" % (i, int(time.time()))
        commit = push(dag_id)
        start = time.monotonic()
        status, _body = api.call("PUT", "parseDagFile/" + file_token(api, "bench_seed"))
        assert status in (200, 201), status
        with_request.append(wait_served(api, dag_id, commit, start))

    dag_id = "bench_norequest_%d" % int(time.time())
    commit = push(dag_id)
    start = time.monotonic()
    without = wait_served(api, dag_id, commit, start)

    register(pin=True, state="absent")
    stop_git_server("qa-bench-git", "/srv/bench-git", "/root/bench-work")

    def fmt(xs):
        return "%.1f s (median of %d: %s)" % (statistics.median(xs), len(xs), ", ".join("%.1f" % x for x in xs))

    print("git push until the new DAG is served by the API, host %s, %d cores" % (HOST, os.cpu_count()))
    print("  pinned: push + one airflow_dag_repo run (validate, pin)   %s" % fmt(pinned))
    print("  tracking (pin: false), with a parseDagFile request       %s" % fmt(with_request))
    print("  tracking (pin: false), no request (refresh_interval 300) %.1f s (one push)" % without)
    print("  ratio no request / with request                          %.1fx"
          % (without / statistics.median(with_request)))


if __name__ == "__main__":
    sys.exit(main())
