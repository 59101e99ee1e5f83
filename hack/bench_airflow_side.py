"""Figures of the Airflow side, on the `make up` test host (run through hack/bench-airflow-side.sh).

1. git push until the new DAG is runnable (GET /api/v2/dags/<id> serves it), announced by a signed
   GitHub push event to the webhook: p50/p95 over QA_BENCH_PUSHES pushes (default 10); and, as the
   naive way in the same run, one push left to the bundle's own refresh_interval (300 s by default;
   QA_BENCH_NAIVE=0 skips it).
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
import urllib.error
import urllib.parse
import urllib.request

HOST = os.environ.get("QA_UP_NAME", "qubinode-airflow-dev")
API = "http://127.0.0.1:%s" % os.environ.get("QA_UI_PORT", "18080")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUSHES = int(os.environ.get("QA_BENCH_PUSHES", "10"))
ROUNDS = int(os.environ.get("QA_BENCH_ROUNDS", "5"))
NAIVE = os.environ.get("QA_BENCH_NAIVE", "1") != "0"
VENV = "/opt/qubinode-airflow/venv"

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


def sh(script):
    return subprocess.run(["podman", "exec", "-i", HOST, "bash", "-e"], input=script, text=True,
                          capture_output=True, check=True).stdout.strip()


def secrets():
    out = sh("cat /etc/qubinode-airflow/secrets.yml")
    return dict(line.split(":", 1) for line in out.splitlines() if ":" in line and not line.startswith("-"))


class Api:
    def __init__(self, password):
        req = urllib.request.Request(API + "/auth/token", method="POST",
                                     data=json.dumps({"username": "admin", "password": password}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            self.token = json.load(resp)["access_token"]

    def call(self, method, path, body=None):
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


def clean(value):
    return value.strip().strip("'\"")


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def webhook_figures(creds, api):
    sh("""
systemctl stop qa-bench-hook-git 2>/dev/null || true
rm -rf /srv/bench-hook /root/bench-hook-work
git config --global user.email bench@example.com; git config --global user.name bench
git init -q --bare -b main /srv/bench-hook/hook.git
git init -q -b main /root/bench-hook-work; cd /root/bench-hook-work; git remote add origin /srv/bench-hook/hook.git
mkdir dags; printf 'x' > dags/.keep; git add -A; git commit -qm seed; git push -q origin main
systemd-run --unit qa-bench-hook-git git daemon --base-path=/srv/bench-hook --export-all --reuseaddr \
  --listen=127.0.0.1 --port=9420 >/dev/null
sleep 1; git ls-remote git://127.0.0.1:9420/hook.git >/dev/null
""")
    subprocess.run(["podman", "cp", os.path.join(ROOT, "molecule", "shared", "files", "qa_push.py"),
                    "%s:/root/qa_push.py" % HOST], check=True)
    register("present")
    stdin = json.dumps({"secret": creds["airflow_webhook_secret"], "password": creds["airflow_admin_password"]})
    out = subprocess.run(["podman", "exec", "-i", HOST, "python3", "/root/qa_push.py", "--work",
                          "/root/bench-hook-work", "--repo-url", "git://127.0.0.1:9420/hook.git", "--prefix",
                          "bench_hook", "--pushes", str(PUSHES), "--timeout", "600"],
                         input=stdin, text=True, capture_output=True, check=True).stdout
    seconds = json.loads(out)["seconds"]
    naive = None
    if NAIVE:
        dag_id = "bench_nohook_%d" % int(time.time())
        sh("cd /root/bench-hook-work; sed 's/bench_hook_[0-9_]*/%s/' $(ls dags/bench_hook_*.py | head -1) "
           "> dags/%s.py; git add -A; git commit -qm %s; git push -q origin main" % (dag_id, dag_id, dag_id))
        start = time.monotonic()
        while api.call("GET", "dags/" + dag_id)[0] != 200:
            if time.monotonic() - start > 900:
                raise SystemExit("%s not served within 900 s without the webhook" % dag_id)
            time.sleep(1)
        naive = time.monotonic() - start
    register("absent")
    sh("systemctl stop qa-bench-hook-git || true")
    return seconds, naive


def register(state):
    play = os.path.join(os.environ["QA_CACHE"], "bench-airflow-side-register.yml")
    with open(play, "w") as f:
        f.write("""
- hosts: airflow_core[0]
  become: true
  gather_facts: false
  roles: [qubinode.airflow.secrets]
  tasks:
    - qubinode.airflow.airflow_dag_repo:
        api_password: "{{ secrets_values.airflow_admin_password }}"
        name: bench_hook
        url: git://127.0.0.1:9420/hook.git
        subdir: dags
        pin: false
        state: %s
""" % state)
    subprocess.run(["ansible-playbook", "-i", os.path.join(os.environ["QA_CACHE"], "up", "inventory.yml"), play],
                   env=dict(os.environ, ANSIBLE_PIPELINING="true"), check=True, capture_output=True)


def operator_figures(creds, api):
    # Airflow reaches the host over SSH as root with its own key, as the example DAGs do.
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
    creds = {k: clean(v) for k, v in secrets().items()}
    api = Api(creds["airflow_admin_password"])
    seconds, naive = webhook_figures(creds, api)
    direct, task, run = operator_figures(creds, api)
    med = statistics.median
    print("qubinode.airflow Airflow side, on test host %s" % HOST)
    print("git push -> new DAG served by the API, announced to the webhook (%d pushes):" % len(seconds))
    print("  p50 %.2f s   p95 %.2f s   min %.2f s   max %.2f s"
          % (pct(seconds, 0.5), pct(seconds, 0.95), min(seconds), max(seconds)))
    print("  every push: %s" % ", ".join("%.2f" % s for s in seconds))
    if naive is not None:
        print("  one push without the webhook (bundle refresh_interval 300 s): %.1f s = %.0fx the webhook's p50"
              % (naive, naive / pct(seconds, 0.5)))
    print("qubinode.airflow.secrets role (converged, SSH to the host as root), medians of %d:" % ROUNDS)
    print("  ansible-playbook directly (as the airflow user)   %.2f s" % med(direct))
    print("  AnsibleRoleOperator, the task's own duration      %.2f s  (%.2fx direct, +%.2f s)"
          % (med(task), med(task) / med(direct), med(task) - med(direct)))
    print("  AnsibleRoleOperator, API trigger -> run success   %.2f s  (%.2fx direct, +%.2f s)"
          % (med(run), med(run) / med(direct), med(run) - med(direct)))


if __name__ == "__main__":
    sys.exit(main())
