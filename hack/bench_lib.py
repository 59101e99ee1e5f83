"""What the benchmark scripts share: the `make up` test host, its API, a git daemon serving a work
tree's pushes on the host's loopback, and airflow_dag_repo runs through a generated play."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request

HOST = os.environ.get("QA_UP_NAME", "qubinode-airflow-dev")
API = "https://127.0.0.1:%s" % os.environ.get("QA_UI_PORT", "18080")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tls():
    """Trust the stack's CA: QA_API_CA names it for a stack of a benchmark's own; `make up` copies its
    stack's next to its inventory."""
    return ssl.create_default_context(
        cafile=os.environ.get("QA_API_CA") or os.path.join(os.environ["QA_CACHE"], "up", "ca.crt"))


def sh(script):
    """Run a bash script on the test host as root; its stdout."""
    return subprocess.run(["podman", "exec", "-i", HOST, "bash", "-e"], input=script, text=True,
                          capture_output=True, check=True).stdout.strip()


def stack_secrets():
    """The stack's secrets file on the test host, as {name: value}."""
    out = sh("cat /etc/qubinode-airflow/secrets.yml")
    return dict((k.strip(), v.strip().strip("'\"")) for k, v in
                (line.split(":", 1) for line in out.splitlines() if ":" in line and not line.startswith("-")))


def admin_password():
    return stack_secrets()["airflow_admin_password"]


class Api:
    """The stack's REST API as admin; the token is fetched at the first call."""

    def __init__(self, password):
        self.password = password
        self.token = None

    def call(self, method, path, body=None):
        if self.token is None:
            req = urllib.request.Request(API + "/auth/token", method="POST",
                                         data=json.dumps({"username": "admin", "password": self.password}).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30, context=_tls()) as resp:
                self.token = json.load(resp)["access_token"]
        req = urllib.request.Request(API + "/api/v2/" + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": "Bearer " + self.token,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30, context=_tls()) as resp:
                text = resp.read()
                return resp.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            return e.code, None


def git_server(unit, base, repo, work, port):
    """A fresh bare repository BASE/REPO.git seeded from the work tree WORK (one commit with an empty
    dags/), served by `git daemon` at git://127.0.0.1:PORT/REPO.git as the transient unit UNIT."""
    sh("""
systemctl stop {unit} 2>/dev/null || true
rm -rf {base} {work}
git config --global user.email bench@example.com; git config --global user.name bench
git init -q --bare -b main {base}/{repo}.git
git init -q -b main {work}; cd {work}; git remote add origin {base}/{repo}.git
mkdir dags; touch dags/.keep; git add -A; git commit -qm seed; git push -q origin main
systemd-run --unit {unit} git daemon --base-path={base} --export-all --reuseaddr \\
  --listen=127.0.0.1 --port={port} >/dev/null
sleep 1; git ls-remote git://127.0.0.1:{port}/{repo}.git >/dev/null
""".format(unit=unit, base=base, repo=repo, work=work, port=port))
    return "git://127.0.0.1:%d/%s.git" % (port, repo)


def stop_git_server(unit, base, work):
    sh("systemctl stop %s 2>/dev/null || true; rm -rf %s %s" % (unit, base, work))


def register(name, url, pin, state="present", wait=True):
    """One airflow_dag_repo run on the test host (subdir dags), through ansible-playbook."""
    play = os.path.join(os.environ["QA_CACHE"], "bench-register-%s.yml" % name)
    with open(play, "w") as f:
        f.write("""
- hosts: airflow_core[0]
  become: true
  gather_facts: false
  roles: [qubinode.airflow.secrets]
  tasks:
    - qubinode.airflow.airflow_dag_repo:
        api_password: "{{ secrets_values.airflow_admin_password }}"
        name: %s
        url: %s
        subdir: dags
        pin: %s
        wait: %s
        state: %s
""" % (name, url, pin, wait, state))
    subprocess.run(["ansible-playbook", "-i", os.path.join(os.environ["QA_CACHE"], "up", "inventory.yml"), play],
                   env=dict(os.environ, ANSIBLE_PIPELINING="true"), check=True, capture_output=True)
