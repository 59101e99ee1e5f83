"""Prints how long a git push takes to become a runnable DAG, measured on the `make up` test host.

  pinned     push, then one airflow_dag_repo run (validate, pin, dag-processor restart, wait)
  tracking   pin: false - Airflow follows the branch itself: without a refresh request (the bundle's
             refresh_interval decides) and with PUT /api/v2/parseDagFile/{file_token}

"Runnable" = the API serves the new DAG at the pushed commit (GET /api/v2/dags/<id>). A git daemon on
the test host's loopback serves the repository. Run through hack/bench-dag-repo.sh.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

HOST = os.environ.get("QA_UP_NAME", "qubinode-airflow-dev")
API = "http://127.0.0.1:%s" % os.environ.get("QA_UI_PORT", "18080")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INVENTORY = os.path.join(os.environ["QA_CACHE"], "up", "inventory.yml")
WORK = os.path.join(os.environ["QA_CACHE"], "bench-dag-repo")
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


def sh(script):
    return subprocess.run(["podman", "exec", "-i", HOST, "bash", "-e"], input=script, text=True,
                          capture_output=True, check=True).stdout.strip()


def admin_password():
    out = sh("grep '^airflow_admin_password:' /etc/qubinode-airflow/secrets.yml")
    return out.split(":", 1)[1].strip().strip("'\"")


class Api:
    def __init__(self, password):
        self.password = password
        self.token = None

    def call(self, method, path, body=None):
        if self.token is None:
            req = urllib.request.Request(API + "/auth/token", method="POST",
                                         data=json.dumps({"username": "admin", "password": self.password}).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                self.token = json.load(resp)["access_token"]
        req = urllib.request.Request(API + "/api/v2/" + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": "Bearer " + self.token,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                text = resp.read()
                return resp.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            return e.code, None


def setup_repo():
    sh("""
systemctl stop qa-bench-git 2>/dev/null || true
rm -rf /srv/bench-git /root/bench-work
git config --global user.email bench@example.com; git config --global user.name bench
git init -q --bare -b main /srv/bench-git/dags.git
git init -q -b main /root/bench-work; cd /root/bench-work; git remote add origin /srv/bench-git/dags.git
mkdir dags; touch dags/.keep; git add -A; git commit -qm seed; git push -q origin main
systemd-run --unit qa-bench-git git daemon --base-path=/srv/bench-git --export-all --reuseaddr \
  --listen=127.0.0.1 --port=9419 >/dev/null
sleep 1; git ls-remote git://127.0.0.1:9419/dags.git >/dev/null
""")
    push("bench_seed")


def push(dag_id):
    body = DAG.format(dag_id=dag_id).replace("'", "'\\''")
    return sh("cd /root/bench-work; printf '%%s' '%s' > dags/%s.py; git add -A; git commit -qm %s; "
              "git push -q origin main; git rev-parse HEAD" % (body, dag_id, dag_id))


def register(pin, wait=True, state="present"):
    play = os.path.join(WORK, "play.yml")
    with open(play, "w") as f:
        f.write("""
- hosts: airflow_core[0]
  become: true
  gather_facts: false
  roles: [qubinode.airflow.secrets]
  tasks:
    - qubinode.airflow.airflow_dag_repo:
        api_password: "{{ secrets_values.airflow_admin_password }}"
        name: bench_repo
        url: git://127.0.0.1:9419/dags.git
        subdir: dags
        pin: %s
        wait: %s
        state: %s
""" % (pin, wait, state))
    env = dict(os.environ, ANSIBLE_PIPELINING="true")
    subprocess.run(["ansible-playbook", "-i", INVENTORY, play], env=env, check=True, capture_output=True)


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
    os.makedirs(WORK, exist_ok=True)
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
    sh("systemctl stop qa-bench-git; rm -rf /srv/bench-git /root/bench-work")

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
