"""Figures of the Airflow side, on the `make up` test host (run through hack/bench-airflow-side.sh).

1. git push until the new DAG is runnable (GET /api/v2/dags/<id> serves it), announced by a signed
   GitHub push event to the webhook: p50/p95 over QA_BENCH_PUSHES pushes (default 10); and, as the
   naive way in the same run, one push left to the bundle's own refresh_interval (300 s by default;
   QA_BENCH_NAIVE=0 skips it).
1b. Push to validated deploy, a pinned repository: the webhook starts the promote DAG, which validates
   and pins the commit with the dag_repos playbook over SSH: push -> new DAG served, p50/p95 over
   QA_BENCH_PROMOTE_PUSHES pushes (default 10, after one discarded warm-up) to a repository of 20 DAGs;
   against what a user does
   without it, in the same run: push, then one airflow_dag_repo run by ansible-playbook (median of
   QA_BENCH_ROUNDS).
2. The same role (qubinode.airflow.secrets, converged, over SSH to the host as root) run with
   ansible-playbook directly and by AnsibleRoleOperator in a DAG triggered through the API: medians of
   QA_BENCH_ROUNDS runs (default 5) of the direct wall time, of the task's own duration and of
   trigger -> run success.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse

from bench_lib import HOST, ROOT, Api, git_server, register, sh, stack_secrets, stop_git_server

PUSHES = int(os.environ.get("QA_BENCH_PUSHES", "10"))
PROMOTE_PUSHES = int(os.environ.get("QA_BENCH_PROMOTE_PUSHES", "10"))
PROMOTE_DAGS = 20  # the repository's size: each push adds one more
ROUNDS = int(os.environ.get("QA_BENCH_ROUNDS", "5"))
NAIVE = os.environ.get("QA_BENCH_NAIVE", "1") != "0"
VENV = "/opt/qubinode-airflow/venv"
GIT = ("qa-bench-hook-git", "/srv/bench-hook", "/root/bench-hook-work")
PROMOTE_GIT = ("qa-bench-promote-git", "/srv/bench-promote", "/root/bench-promote-work")

ROLE_DAG = '''import pendulum
from airflow.sdk import DAG
from qubinode_airflow.ansible.operators import AnsibleRoleOperator

with DAG("bench_role_operator", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    AnsibleRoleOperator(task_id="secrets", role="qubinode.airflow.secrets", hosts="airflow_core",
                        gather_facts=False, ansible_conn_id="qubinode_stack")
'''

ROLE_PLAY = '''- hosts: airflow_core
  gather_facts: false
  roles: [qubinode.airflow.secrets]
'''


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def qa_push(creds, *args):
    """The molecule scenarios' push helper on the test host: its JSON line."""
    for name in ("qa_push.py", "qa_repo_dag.py"):
        subprocess.run(["podman", "cp", os.path.join(ROOT, "molecule", "shared", "files", name),
                        "%s:/root/%s" % (HOST, name)], check=True)
    stdin = json.dumps({"secret": creds["airflow_webhook_secret"], "password": creds["airflow_admin_password"]})
    out = subprocess.run(["podman", "exec", "-i", HOST, "python3", "/root/qa_push.py", "--template",
                          "/root/qa_repo_dag.py", "--timeout", "900", *args],
                         input=stdin, text=True, capture_output=True, check=False)
    if out.returncode != 0:
        raise SystemExit("qa_push.py failed: %s %s" % (out.stdout[-1000:], out.stderr[-2000:]))
    return json.loads(out.stdout)


def webhook_figures(creds, api):
    unit, base, work = GIT
    url = git_server(unit, base, "hook", work, 9420)
    register("bench_hook", url, pin=False)
    seconds = qa_push(creds, "--work", work, "--repo-url", url, "--prefix", "bench_hook",
                      "--pushes", str(PUSHES))["seconds"]
    naive = None
    if NAIVE:
        dag_id = "bench_nohook_%d" % int(time.time())
        sh("cd %s; sed 's/QA_DAG_ID/%s/' /root/qa_repo_dag.py > dags/%s.py; git add -A; git commit -qm %s; "
           "git push -q origin main" % (work, dag_id, dag_id, dag_id))
        start = time.monotonic()
        while api.call("GET", "dags/" + dag_id)[0] != 200:
            if time.monotonic() - start > 900:
                raise SystemExit("%s not served within 900 s without the webhook" % dag_id)
            time.sleep(1)
        naive = time.monotonic() - start
    register("bench_hook", url, pin=False, state="absent")
    stop_git_server(unit, base, work)
    return seconds, naive


def promote_figures(creds, api):
    """Pushes to a pinned repository, deployed by the promote DAG; and push + airflow_dag_repo by hand."""
    unit, base, work = PROMOTE_GIT
    url = git_server(unit, base, "promote", work, 9421)
    for n in range(PROMOTE_DAGS):
        sh("cd %s; sed 's/QA_DAG_ID/bench_seed_%d/' /root/qa_repo_dag.py > dags/bench_seed_%d.py" % (work, n, n))
    sh("cd %s; git add -A; git commit -qm seed; git push -q origin main" % work)
    register("bench_promote", url, pin=True)
    status = api.call("PATCH", "dags/qubinode_dag_repo_promote", {"is_paused": False})[0]
    assert status == 200, "the promote DAG is not served (airflow_example_dags: true?): HTTP %s" % status
    common = ("--work", work, "--repo-url", url, "--bundle", "bench_promote", "--promote")
    qa_push(creds, *common, "--prefix", "bench_warm", "--pushes", "1")  # a warm-up (first run of the DAG), discarded
    pushed = qa_push(creds, *common, "--prefix", "bench_promote", "--pushes", str(PROMOTE_PUSHES))
    seconds, phases = pushed["seconds"], pushed["phases"]
    api.call("PATCH", "dags/qubinode_dag_repo_promote", {"is_paused": True})
    by_hand = []
    for n in range(ROUNDS):
        dag_id = "bench_by_hand_%d_%d" % (int(time.time()), n)
        start = time.monotonic()
        sh("cd %s; sed 's/QA_DAG_ID/%s/' /root/qa_repo_dag.py > dags/%s.py; git add -A; git commit -qm %s; "
           "git push -q origin main" % (work, dag_id, dag_id, dag_id))
        register("bench_promote", url, pin=True)
        while api.call("GET", "dags/" + dag_id)[0] != 200:
            time.sleep(0.2)
        by_hand.append(time.monotonic() - start)
    register("bench_promote", url, pin=True, state="absent")
    stop_git_server(unit, base, work)
    return seconds, phases, by_hand


def stack_connection(api):
    """Airflow reaches the host over SSH as root with its own key, as the example DAGs do (connection
    qubinode_stack); the inventory file for running ansible-playbook directly."""
    sh("""
export DEBIAN_FRONTEND=noninteractive
command -v sshd >/dev/null || apt-get install -y -q openssh-server >/dev/null
systemctl start ssh
test -f /root/bench-key || ssh-keygen -q -t ed25519 -N "" -f /root/bench-key
mkdir -p /root/.ssh; grep -qf /root/bench-key.pub /root/.ssh/authorized_keys 2>/dev/null || cat /root/bench-key.pub >> /root/.ssh/authorized_keys
install -o airflow -g airflow -m 0600 /root/bench-key /var/lib/airflow/bench-key
""")
    name = sh("hostname")
    inventory = {"all": {"children": {"airflow_db": {"hosts": {name: {"ansible_host": "127.0.0.1"}}},
                                      "airflow_core": {"hosts": {name: {"ansible_host": "127.0.0.1"}}}}}}
    key = sh("cat /root/bench-key")
    conn = {"connection_id": "qubinode_stack", "conn_type": "qubinode_ansible", "login": "root",
            "extra": json.dumps({"inventory": inventory, "private_key": key, "host_key_checking": False})}
    api.call("DELETE", "connections/qubinode_stack")
    status = api.call("POST", "connections", conn)[0]
    assert status == 201, status
    sh("cat > /var/lib/airflow/bench-inventory.yml <<'EOF'\n%s\nEOF\ncat > /var/lib/airflow/bench-role.yml <<'EOF'\n%sEOF\n"
       "chown airflow: /var/lib/airflow/bench-inventory.yml /var/lib/airflow/bench-role.yml"
       % (json.dumps(inventory), ROLE_PLAY))


def operator_figures(api):
    direct = []
    for _round in range(ROUNDS):
        start = time.monotonic()
        sh("cd /var/lib/airflow && runuser -u airflow -- env HOME=/var/lib/airflow PATH=%s/bin:/usr/bin:/bin "
           "ANSIBLE_COLLECTIONS_PATH=/opt/qubinode-airflow/collections ANSIBLE_HOST_KEY_CHECKING=False "
           "%s/bin/ansible-playbook -u root --private-key /var/lib/airflow/bench-key -i bench-inventory.yml "
           "bench-role.yml >/dev/null" % (VENV, VENV))
        direct.append(time.monotonic() - start)

    sh("cat > /var/lib/airflow/dags/bench_role_operator.py <<'EOF'\n%sEOF\nchown airflow: "
       "/var/lib/airflow/dags/bench_role_operator.py" % ROLE_DAG)
    start = time.monotonic()
    while api.call("GET", "dags/bench_role_operator")[0] != 200:
        if time.monotonic() - start > 600:
            raise SystemExit("bench_role_operator was not parsed")
        time.sleep(2)
    api.call("PATCH", "dags/bench_role_operator", {"is_paused": False})
    task, run = [], []
    for _round in range(ROUNDS):
        start = time.monotonic()
        status, created = api.call("POST", "dags/bench_role_operator/dagRuns", {"logical_date": None})
        assert status == 200, status
        run_id = created["dag_run_id"]
        while True:
            status, dr = api.call("GET", "dags/bench_role_operator/dagRuns/%s" % urllib.parse.quote(run_id))
            if dr and dr["state"] in ("success", "failed"):
                break
            time.sleep(0.2)
        if dr["state"] != "success":
            raise SystemExit("bench_role_operator run %s failed" % run_id)
        run.append(time.monotonic() - start)
        status, ti = api.call("GET", "dags/bench_role_operator/dagRuns/%s/taskInstances/secrets"
                              % urllib.parse.quote(run_id))
        task.append(ti["duration"])
    sh("rm -f /var/lib/airflow/dags/bench_role_operator.py /var/lib/airflow/bench-role.yml "
       "/var/lib/airflow/bench-inventory.yml /var/lib/airflow/bench-key")
    api.call("DELETE", "connections/qubinode_stack")
    return direct, task, run


def main():
    creds = stack_secrets()
    api = Api(creds["airflow_admin_password"])
    seconds, naive = webhook_figures(creds, api)
    stack_connection(api)
    promoted, phases, by_hand = promote_figures(creds, api)
    direct, task, run = operator_figures(api)
    med = statistics.median
    print("qubinode.airflow Airflow side, on test host %s" % HOST)
    print("git push -> new DAG served by the API, announced to the webhook (%d pushes):" % len(seconds))
    print("  p50 %.2f s   p95 %.2f s   min %.2f s   max %.2f s"
          % (pct(seconds, 0.5), pct(seconds, 0.95), min(seconds), max(seconds)))
    print("  every push: %s" % ", ".join("%.2f" % s for s in seconds))
    if naive is not None:
        print("  one push without the webhook (bundle refresh_interval 300 s): %.1f s = %.0fx the webhook's p50"
              % (naive, naive / pct(seconds, 0.5)))
    print("push to a pinned repository -> validated, pinned and served (promote DAG, %d pushes):" % len(promoted))
    print("  p50 %.2f s   p95 %.2f s   min %.2f s   max %.2f s"
          % (pct(promoted, 0.5), pct(promoted, 0.95), min(promoted), max(promoted)))
    print("  every push: %s" % ", ".join("%.2f" % s for s in promoted))
    if phases:
        marks = [statistics.median(p[i] for p in phases) for i in range(4)]
        print("  medians, seconds after the push: run queued %.2f, task started %.2f, task ended %.2f, run ended %.2f"
              % tuple(marks))
    print("  push, then airflow_dag_repo by ansible-playbook (median of %d): %.2f s = %.2fx the promote DAG's p50"
          % (len(by_hand), statistics.median(by_hand), statistics.median(by_hand) / pct(promoted, 0.5)))
    print("qubinode.airflow.secrets role (converged, SSH to the host as root), medians of %d:" % ROUNDS)
    print("  ansible-playbook directly (as the airflow user)   %.2f s" % med(direct))
    print("  AnsibleRoleOperator, the task's own duration      %.2f s  (%.2fx direct, +%.2f s)"
          % (med(task), med(task) / med(direct), med(task) - med(direct)))
    print("  AnsibleRoleOperator, API trigger -> run success   %.2f s  (%.2fx direct, +%.2f s)"
          % (med(run), med(run) / med(direct), med(run) - med(direct)))


if __name__ == "__main__":
    sys.exit(main())
