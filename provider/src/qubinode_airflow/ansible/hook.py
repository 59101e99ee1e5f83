# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Run Ansible content with ansible-runner; inventory and credentials come from Airflow connections.

Everything a run needs (inventory, credentials, extra vars, vault password) is written into a private
data directory of mode 0700 that exists only for the run. Secrets never reach a command line or the
task log: Airflow's masker learns them before the run starts.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
from typing import Any, Callable

import yaml
from airflow.sdk import BaseHook, conf
from airflow.sdk.exceptions import AirflowException
from airflow.sdk.log import mask_secret

SECTION = "qubinode_ansible"
# Where the airflow role installs this collection for the Ansible operators (and the collections
# bundled with the `ansible` package, which Ansible finds on its own).
DEFAULT_COLLECTIONS_PATH = "/opt/qubinode-airflow/collections"
FAILED_EVENTS = ("runner_on_failed", "runner_on_unreachable", "runner_item_on_failed")
# Seconds a stopped play gets to end after SIGTERM before what is left of it is killed: within the
# 5 s Airflow's supervisor gives a task process between SIGTERM and SIGKILL.
STOP_GRACE = 3.0


class AnsibleRunFailed(AirflowException):
    """The play failed: carries the first failing host, task and message, and the recap."""

    def __init__(self, message: str, recap: dict[str, dict[str, int]]):
        super().__init__(message)
        self.recap = recap


def _load_inventory(value: Any, field: str) -> tuple[str, str]:
    """(file name, content) for an inventory given as a mapping, YAML/INI text or 'h1,h2'."""
    if isinstance(value, dict):
        return "hosts.yml", json.dumps(value)
    if not isinstance(value, str) or not value.strip():
        raise AirflowException("%s must be a mapping (YAML inventory), inventory text or a comma-separated "
                               "host list, not %r" % (field, type(value).__name__))
    text = value.strip()
    if "\n" not in text and "," in text and "=" not in text:
        hosts = [h.strip() for h in text.split(",") if h.strip()]
        return "hosts.yml", json.dumps({"all": {"hosts": {h: {} for h in hosts}}})
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        parsed = None
    if isinstance(parsed, dict):
        return "hosts.yml", json.dumps(parsed)
    return "hosts.ini", text + "\n"


class AnsibleHook(BaseHook):
    """Runs a playbook through ansible-runner.

    Connection (type ``qubinode_ansible``): ``host`` and ``port`` name a single target host when the
    extra field ``inventory`` does not give a whole inventory (mapping, YAML or INI text); ``login``
    is the SSH user; ``password`` the SSH password; extra ``private_key`` an SSH private key (the key
    itself), ``become_password``, ``host_key_checking`` (default true) and ``vars`` (variables for
    every host). The host ``localhost`` is reached without SSH.
    """

    conn_name_attr = "ansible_conn_id"
    default_conn_name = "qubinode_ansible_default"
    conn_type = "qubinode_ansible"
    hook_name = "Ansible inventory (qubinode)"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema"],
            "relabeling": {"host": "Single target host (optional)", "login": "SSH user", "password": "SSH password"},
            "placeholders": {"extra": json.dumps({"inventory": {"all": {"hosts": {"kvm1.example.com": {}}}},
                                                  "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----...",
                                                  "become_password": "", "host_key_checking": True})},
        }

    def __init__(self, ansible_conn_id: str | None = None, vault_conn_id: str | None = None,
                 collections_path: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.ansible_conn_id = ansible_conn_id
        self.vault_conn_id = vault_conn_id
        self.collections_path = collections_path or conf.get(SECTION, "collections_path",
                                                             fallback=DEFAULT_COLLECTIONS_PATH)
        self.cancelled = threading.Event()
        self._play: Any = None  # psutil.Process of the running ansible-playbook

    # -- what goes into the private data directory ----------------------------------------------------

    def _write(self, path: str, content: str) -> str:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(content)
        return path

    def prepare(self, workdir: str, inventory: Any = None, extra_vars: dict | None = None,
                secret_vars: dict | None = None) -> tuple[list[str], dict]:
        """Write inventory, credentials and extra vars (with `secret_vars`, whose values the masker learns
        first) into workdir; return (ansible-playbook args, env)."""
        conn = self.get_connection(self.ansible_conn_id) if self.ansible_conn_id else None
        extra = conn.extra_dejson if conn else {}
        args: list[str] = []
        env: dict[str, str] = {}
        inv_dir = os.path.join(workdir, "inventory")
        os.makedirs(inv_dir, mode=0o700)
        source = inventory if inventory is not None else extra.get("inventory")
        field = "inventory" if inventory is not None else "the 'inventory' extra of connection %r" % self.ansible_conn_id
        if source is None and conn and conn.host:
            hostvars: dict[str, Any] = {}
            if conn.host in ("localhost", "127.0.0.1"):
                hostvars["ansible_connection"] = "local"
            if conn.port:
                hostvars["ansible_port"] = conn.port
            source = {"all": {"hosts": {conn.host: hostvars}}}
        if source is None:
            raise AirflowException("no inventory: pass the operator's inventory, or an ansible_conn_id whose host "
                                   "or 'inventory' extra names the target hosts")
        name, content = _load_inventory(source, field)
        self._write(os.path.join(inv_dir, name), content)

        # Credentials as variables of the group 'all' in a second inventory source, so a host's own
        # variables in the inventory still win.
        creds: dict[str, Any] = dict(extra.get("vars") or {})
        if conn and conn.login:
            creds["ansible_user"] = conn.login
        if conn and conn.password:
            mask_secret(conn.password)
            creds["ansible_password"] = conn.password
        if extra.get("become_password"):
            mask_secret(extra["become_password"])
            creds["ansible_become_password"] = extra["become_password"]
        if extra.get("private_key"):
            key = extra["private_key"].strip() + "\n"
            mask_secret(extra["private_key"])
            creds["ansible_ssh_private_key_file"] = self._write(os.path.join(workdir, "ssh_key"), key)
        if creds:
            self._write(os.path.join(inv_dir, "zz_qubinode_connection.yml"), json.dumps({"all": {"vars": creds}}))
        if str(extra.get("host_key_checking", True)).lower() in ("false", "0", "no"):
            env["ANSIBLE_HOST_KEY_CHECKING"] = "False"
        # no -i: ansible-runner passes the private data directory's inventory/ itself

        if self.vault_conn_id:
            vault = self.get_connection(self.vault_conn_id).password
            if not vault:
                raise AirflowException("connection %r (vault_conn_id) has no password: put the vault password in "
                                       "its password field" % self.vault_conn_id)
            mask_secret(vault)
            args += ["--vault-password-file", self._write(os.path.join(workdir, "vault_password"), vault)]

        env_dir = os.path.join(workdir, "env")
        os.makedirs(env_dir, mode=0o700)
        for value in _leaves(secret_vars):
            mask_secret(value)
        if extra_vars or secret_vars:
            # A file, not -e on the command line, which other users of the host could read.
            self._write(os.path.join(env_dir, "extravars"), json.dumps(dict(extra_vars or {}, **(secret_vars or {}))))
        return args, env

    # -- the run ------------------------------------------------------------------------------------

    def run(self, playbook: str, inventory: Any = None, extra_vars: dict | None = None, *,
            limit: str | None = None, tags: str | None = None, skip_tags: str | None = None,
            check: bool = False, diff: bool = False, verbosity: int = 0, forks: int | None = None,
            timeout: int | None = None, envvars: dict | None = None, project_dir: str | None = None,
            files: dict[str, str] | None = None, on_line: Callable[[str], None] | None = None,
            label: str | None = None, secret_vars: dict | None = None) -> dict:
        """Run `playbook` (a path, or a collection playbook `ns.coll.name`); return the recap per host.

        `files` are written into the project directory first (name -> content), for generated playbooks;
        `label` names the run in messages (default: the playbook); `secret_vars` are extra vars that hold
        secrets: masked in the task log and kept out of what Airflow stores. Raises AnsibleRunFailed naming
        the first failing host, task and message.
        """
        label = label or playbook
        import ansible_runner

        emit = on_line or self.log.info
        workdir = tempfile.mkdtemp(prefix="qubinode-ansible-")
        os.chmod(workdir, 0o700)
        failures: list[tuple[str, str, str]] = []
        stats: dict = {}
        stopped: list[str] = []
        deadline = time.monotonic() + timeout if timeout else None
        self._play = None

        def on_event(event: dict) -> bool:
            if self._play is None and event.get("pid"):
                self._play = _process(int(event["pid"]))  # ansible-playbook's own process
            for line in (event.get("stdout") or "").splitlines():
                emit(line)
            data = event.get("event_data") or {}
            if event.get("event") == "playbook_on_stats":
                stats.update(data)
            if event.get("event") in FAILED_EVENTS and not data.get("ignore_errors"):
                res = data.get("res") or {}
                msg = res.get("msg") or res.get("stderr") or res.get("module_stderr") or res.get("stdout") or ""
                task = data.get("task", "?")
                if data.get("role"):
                    task = "%s : %s" % (data["role"], task)
                failures.append((data.get("host", "?"), task, str(msg).strip()[-1000:]))
            return False  # events are not kept: what is needed was read above

        def should_stop() -> bool:
            # Polled by ansible-runner while the play runs. It stops a play by killing the process
            # group of ansible-playbook only, and Ansible's workers run in sessions of their own, so
            # the play is stopped here first, workers and their commands included.
            if not stopped:
                if self.cancelled.is_set():
                    stopped.append("cancelled")
                elif deadline is not None and time.monotonic() > deadline:
                    stopped.append("timeout")
                else:
                    return False
                _stop_play(self._play, STOP_GRACE)
            return True

        try:
            args, env = self.prepare(workdir, inventory, extra_vars, secret_vars)
            project = project_dir or os.path.join(workdir, "project")
            os.makedirs(project, mode=0o700, exist_ok=True)
            for name, content in (files or {}).items():
                self._write(os.path.join(project, name), content)
            if check:
                args.append("--check")
            if diff:
                args.append("--diff")
            bindir = os.path.dirname(sys.executable)
            env.update({
                # ansible-playbook of the virtualenv this task runs in
                "PATH": bindir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
                "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(p for p in (self.collections_path,
                                                                        os.environ.get("ANSIBLE_COLLECTIONS_PATH"))
                                                            if p),
                "ANSIBLE_LOCAL_TEMP": os.path.join(workdir, "tmp"),
                "ANSIBLE_NOCOLOR": "True",
                "ANSIBLE_RETRY_FILES_ENABLED": "False",
                # One SSH command per module run instead of three; a host whose sudoers sets requiretty needs
                # envvars={"ANSIBLE_PIPELINING": "False"}.
                "ANSIBLE_PIPELINING": "True",
            })
            env.update(envvars or {})
            runner = ansible_runner.run(
                private_data_dir=workdir, project_dir=project, playbook=playbook, cmdline=shlex.join(args),
                limit=limit, tags=tags, skip_tags=skip_tags, verbosity=verbosity or None, forks=forks,
                envvars=env, quiet=True, event_handler=on_event, cancel_callback=should_stop,
                suppress_env_files=False)
            recap = self.recap(stats)
            if stopped == ["cancelled"]:
                raise AnsibleRunFailed("%s was cancelled" % label, recap)
            if stopped == ["timeout"]:
                raise AnsibleRunFailed("%s did not finish within %ss (timeout)" % (label, timeout), recap)
            if runner.status == "successful" and runner.rc == 0:
                return recap
            if failures:
                host, task, msg = failures[0]
                raise AnsibleRunFailed("%s failed on host %s, task %r: %s" % (label, host, task, msg), recap)
            tail = "\n".join((runner.stdout.read() if runner.stdout else "").strip().splitlines()[-5:])
            raise AnsibleRunFailed("%s failed (rc %s, %s): %s" % (label, runner.rc, runner.status, tail), recap)
        finally:
            # An exception out of the run (Airflow's execution_timeout raises one) left the play running.
            _stop_play(self._play, STOP_GRACE)
            self._play = None
            shutil.rmtree(workdir, ignore_errors=True)

    @staticmethod
    def recap(stats: dict) -> dict[str, dict[str, int]]:
        """ansible-runner's stats turned into PLAY RECAP rows: {host: {ok, changed, failed, ...}}."""
        keys = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable",
                "skipped": "skipped", "rescued": "rescued", "ignored": "ignored"}
        hosts = sorted({h for k in keys for h in (stats.get(k) or {})})
        return {h: {name: int((stats.get(k) or {}).get(h, 0)) for k, name in keys.items()} for h in hosts}

    def on_kill(self) -> None:
        # Stops the play at once: Airflow's supervisor kills this task process 5 s after SIGTERM, which
        # may be before ansible-runner polls the cancel flag again.
        self.cancelled.set()
        _stop_play(self._play, STOP_GRACE)


def git_credentials(conn: Any) -> dict[str, str]:
    """A git connection (as airflow_dag_repo writes it, and the git provider reads it: login and password,
    or the extra private_key) as the credentials variable of a dag_repos manifest: token (and username), or
    ssh_private_key."""
    key = (conn.extra_dejson or {}).get("private_key")
    if key:
        return {"ssh_private_key": key}
    if conn.password:
        return dict({"token": conn.password}, **({"username": conn.login} if conn.login else {}))
    raise AirflowException("connection %r holds no git credentials: a token in its password field, or an SSH "
                           "private key in its extra private_key" % conn.conn_id)


def _leaves(value: Any) -> list[str]:
    """Every string in a nest of mappings and lists."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in _leaves(v)]
    return []


def _process(pid: int) -> Any:
    import psutil

    try:
        return psutil.Process(pid)  # its signals are safe from PID reuse
    except psutil.NoSuchProcess:
        return None


def _stop_play(main: Any, grace: float) -> None:
    """SIGTERM to ansible-playbook and everything it started (its workers run in sessions of their
    own, their commands under them); SIGKILL to what still runs `grace` seconds later."""
    import psutil

    if main is None:
        return  # no event yet, so no worker yet either: ansible-runner's kill is enough

    def running(proc: psutil.Process) -> bool:
        # ansible-playbook is a child of this process that pexpect reaps: ended means zombie here
        try:
            return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    if not running(main):
        return
    try:
        procs = [main] + main.children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    end = time.monotonic() + grace
    while any(running(p) for p in procs) and time.monotonic() < end:
        time.sleep(0.1)
    for proc in procs:
        if running(proc):
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
