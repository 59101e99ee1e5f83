"""AnsibleRoleOperator / AnsiblePlaybookOperator inside real Airflow task runs, driving real
ansible-playbook through ansible-runner against this machine (local connection).

The collection role used is qubinode.airflow.secrets: it is the one role of the collection that
converges on a bare machine, and it handles secrets, so it also shows that nothing secret reaches
the task log.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time

import pytest
import yaml
from conftest import COLLECTIONS, xcom

from qubinode_airflow.ansible.hook import AnsibleHook, AnsibleRunFailed

LOCAL = "localhost ansible_connection=local ansible_python_interpreter=%s" % sys.executable


def role_dag(dag_id, store, check=False, extra=""):
    return f"""
        import pendulum
        from airflow.sdk import DAG
        from qubinode_airflow.ansible.operators import AnsibleRoleOperator
        with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1),
                 params={{"store": {str(store)!r}}}) as dag:
            AnsibleRoleOperator(
                task_id="secrets", role="qubinode.airflow.secrets", hosts="all", gather_facts=False,
                inventory={LOCAL!r}, collections_path={str(COLLECTIONS)!r}, check={check!r},
                # The record of fingerprints next to the store: never in the machine's /etc.
                role_vars={{"secrets_store_path": "{{{{ params.store }}}}", "secrets_store_host": "localhost",
                           "secrets_record_path": "{{{{ params.store }}}}.record/secrets-record.yml",
                           # The host's TLS files too; the task's Python has the cryptography library.
                           "secrets_tls_dir": "{{{{ params.store }}}}.tls", "secrets_crypto_packages": []}},
                {extra})
    """


def test_collection_role_check_apply_rerun(run_dag, tmp_path, capfd):
    store = tmp_path / "store" / "secrets.yml"

    run, tis = run_dag("role_check", role_dag("role_check", store, check=True))
    assert run.state == "success"
    recap = xcom(run, "secrets")
    assert recap["localhost"]["changed"] >= 2 and recap["localhost"]["failed"] == 0
    assert not store.exists(), "check mode wrote the secrets file"

    run, tis = run_dag("role_apply", role_dag("role_apply", store))
    assert run.state == "success"
    assert xcom(run, "secrets")["localhost"]["changed"] >= 2
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    stored = yaml.safe_load(store.read_text())
    assert len(stored["airflow_fernet_key"]) == 44
    assert (store.parent / "secrets.yml.record" / "secrets-record.yml").exists()

    run, tis = run_dag("role_rerun", role_dag("role_rerun", store))
    assert run.state == "success"
    assert xcom(run, "secrets")["localhost"]["changed"] == 0
    assert yaml.safe_load(store.read_text()) == stored, "generated secrets were not kept"

    out = capfd.readouterr()
    log = out.out + out.err
    assert "TASK [qubinode.airflow.secrets : Keep the stack secrets on the secrets host]" in log
    for value in stored.values():
        assert value not in log


def test_git_credentials_reach_the_play_from_a_connection_and_nothing_airflow_stores(
        run_dag, connection, tmp_path, capfd):
    """What the promote and review DAGs do for a repository registered with credentials: an upstream task names
    the connection (XCom holds its id only), the operator reads it when it runs and hands the play a variable."""
    token = "glpat-qa-" + "7" * 20
    connection("qubinode_git_private", conn_type="git", login="oauth2", password=token)
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nqa-not-a-key-31337\n-----END OPENSSH PRIVATE KEY-----"
    connection("qubinode_git_keyed", conn_type="git", extra={"private_key": key})
    out = tmp_path / "creds.json"
    playbook = tmp_path / "creds.yml"
    playbook.write_text('- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.copy:\n'
                        '        dest: "%s"\n        mode: "0600"\n'
                        '        content: "{{ {\'https\': repo_cred, \'ssh\': keyed_cred, \'repos\': dag_repos} | to_json }}"\n'
                        % out)
    body = f"""
        import pendulum
        from airflow.sdk import DAG, task
        from qubinode_airflow.ansible.operators import AnsiblePlaybookOperator
        with DAG("git_creds", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
            @task(multiple_outputs=True)
            def names():
                return {{"creds": {{"repo_cred": "qubinode_git_private", "keyed_cred": "qubinode_git_keyed"}},
                        "repos": [{{"name": "private"}}]}}
            # As the promote DAG has it: each output of one task, one of them inside extra_vars.
            entry = names()
            AnsiblePlaybookOperator(task_id="play", playbook={str(playbook)!r}, inventory={LOCAL!r},
                                    extra_vars={{"dag_repos": entry["repos"]}}, git_credentials=entry["creds"])
    """
    run, tis = run_dag("git_creds", body)
    assert run.state == "success"
    import json
    assert json.loads(out.read_text()) == {"https": {"token": token, "username": "oauth2"},
                                           "ssh": {"ssh_private_key": key}, "repos": [{"name": "private"}]}
    log = capfd.readouterr()
    assert token not in log.out + log.err and "qa-not-a-key" not in log.out + log.err
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    with create_session() as session:
        stored = [str(r.rendered_fields) for r in session.query(RenderedTaskInstanceFields).filter_by(run_id=run.run_id)]
        stored += [str(XComModel.deserialize_value(r)) for r in session.query(XComModel).filter_by(run_id=run.run_id)]
    assert any("qubinode_git_private" in s for s in stored), stored
    assert not any(token in s or "qa-not-a-key" in s for s in stored)


@pytest.mark.parametrize("name", ["ansible_password", "1abc", "a-b", "x" * 101])
def test_a_git_credentials_variable_must_be_a_plain_variable_name(name):
    from qubinode_airflow.ansible.operators import AnsiblePlaybookOperator
    op = AnsiblePlaybookOperator(task_id="t", playbook="p.yml", git_credentials={name: "qubinode_git_x"})
    with pytest.raises(ValueError, match="is not a variable name a play may be given"):
        op.execute({})


def test_a_git_connection_without_credentials_is_a_clear_error(connection):
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowException

    from qubinode_airflow.ansible.hook import git_credentials
    connection("qubinode_git_empty", conn_type="git", host="https://git.example.com/x.git")
    with pytest.raises(AirflowException, match="'qubinode_git_empty' holds no git credentials"):
        git_credentials(BaseHook.get_connection("qubinode_git_empty"))


def test_failure_names_host_task_and_message(run_dag, tmp_path):
    store = tmp_path / "secrets.yml"
    # A Fernet key the role refuses: the run fails at the role's check, before anything is written.
    body = role_dag("role_bad", store, extra='extra_vars={"airflow_fernet_key": "short"}')
    run, tis = run_dag("role_bad", body)
    assert run.state == "failed"
    assert tis["secrets"].state == "failed"
    assert not store.exists()

    hook = AnsibleHook(collections_path=str(COLLECTIONS))
    play = ('- hosts: all\n  gather_facts: false\n  roles:\n    - role: qubinode.airflow.secrets\n'
            '      vars: {secrets_store_path: "%s", secrets_store_host: localhost, secrets_tls_dir: "%s.tls",\n'
            '             secrets_crypto_packages: []}\n' % (store, store))
    with pytest.raises(AnsibleRunFailed) as err:
        hook.run("play.yml", LOCAL, {"airflow_fernet_key": "short"}, files={"play.yml": play}, on_line=lambda line: None)
    msg = str(err.value)
    assert "failed on host localhost" in msg
    assert "task 'secrets : Check the Fernet keys'" in msg
    assert "airflow_fernet_key must be 44 characters" in msg
    assert err.value.recap["localhost"]["failed"] == 1


def test_output_streams_while_the_play_runs():
    play = ('- hosts: all\n  gather_facts: false\n  tasks:\n'
            '    - ansible.builtin.debug: {msg: first}\n'
            '    - ansible.builtin.pause: {seconds: 3}\n'
            '    - ansible.builtin.debug: {msg: last}\n')
    seen = []
    recap = AnsibleHook().run("play.yml", LOCAL, files={"play.yml": play},
                              on_line=lambda line: seen.append((time.monotonic(), line)))
    end = time.monotonic()
    first = next(t for t, line in seen if '"msg": "first"' in line)
    assert end - first >= 2.5, "the first task's output arrived only at the end of the run"
    assert recap == {"localhost": {"ok": 3, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0,
                                   "rescued": 0, "ignored": 0}}


def test_inventory_and_credentials_from_a_connection(connection, tmp_path):
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key-0123456789\n-----END OPENSSH PRIVATE KEY-----"
    conn = connection("stack_hosts", conn_type="qubinode_ansible", login="deploy", password="ssh-pass-4711",
                      extra={"inventory": {"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                                                           "ansible_python_interpreter": sys.executable}},
                                                   "vars": {"site": "kvm1"}}},
                             "private_key": key, "become_password": "become-pass-0815"})
    out = tmp_path / "facts.json"
    play = ('- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.copy:\n'
            '        dest: "%s"\n        mode: "0600"\n'
            '        content: "{{ {\'user\': ansible_user, \'site\': site, \'key\': lookup(\'file\', '
            'ansible_ssh_private_key_file), \'become\': ansible_become_password, \'who\': who} | to_json }}"\n' % out)
    lines = []
    AnsibleHook(ansible_conn_id=conn).run("play.yml", extra_vars={"who": "airflow"}, files={"play.yml": play},
                                          on_line=lines.append)
    import json
    got = json.loads(out.read_text())
    assert got == {"user": "deploy", "site": "kvm1", "key": key, "become": "become-pass-0815", "who": "airflow"}
    assert not any("ssh-pass-4711" in line or "not-a-real-key" in line for line in lines)

    # An inline inventory replaces the connection's hosts; its credentials still apply.
    AnsibleHook(ansible_conn_id=conn).run("play.yml", inventory=LOCAL + " site=inline", extra_vars={"who": "x"},
                                          files={"play.yml": play}, on_line=lines.append)
    assert json.loads(out.read_text())["site"] == "inline"


def test_vault_password_from_a_connection(connection, tmp_path):
    vault_file = tmp_path / "vault-pass"
    vault_file.write_text("vault-secret-1234\n")
    vaulted = tmp_path / "vaulted.yml"
    vaulted.write_text("admin_password: from-the-vault\n")
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-vault"), "encrypt",
                    "--vault-password-file", str(vault_file), str(vaulted)], check=True, capture_output=True)
    assert b"$ANSIBLE_VAULT" in vaulted.read_bytes()
    out = tmp_path / "out.txt"
    play = ('- hosts: all\n  gather_facts: false\n  vars_files: ["%s"]\n  tasks:\n'
            '    - ansible.builtin.copy: {dest: "%s", content: "{{ admin_password }}", mode: "0600"}\n' % (vaulted, out))
    vault = connection("vault", conn_type="generic", password="vault-secret-1234")
    lines = []
    AnsibleHook(vault_conn_id=vault).run("play.yml", LOCAL, files={"play.yml": play}, on_line=lines.append)
    assert out.read_text() == "from-the-vault"

    wrong = connection("vault_wrong", conn_type="generic", password="not-it")
    with pytest.raises(AnsibleRunFailed, match="[Dd]ecryption failed"):
        AnsibleHook(vault_conn_id=wrong).run("play.yml", LOCAL, files={"play.yml": play}, on_line=lines.append)
    assert not any("vault-secret-1234" in line or "not-it" in line for line in lines)


@pytest.mark.parametrize("inventory, field", [
    (None, "no inventory: pass the operator's inventory"),
    (42, "inventory must be a mapping"),
])
def test_bad_inventory_is_refused(inventory, field):
    with pytest.raises(Exception, match=field):
        AnsibleHook().run("play.yml", inventory, files={"play.yml": "- hosts: all\n  tasks: []\n"})


def _play_processes(marker):
    """Processes of this machine whose command line contains marker."""
    import psutil
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and marker in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


class _Interrupted(Exception):
    pass


def _interrupt(signum, frame):
    raise _Interrupted()


@pytest.mark.parametrize("stop", ["on_kill", "timeout", "interrupted"])
def test_a_stopped_play_leaves_no_process_behind(stop):
    # Ansible runs each task in a worker process in a session of its own, so killing the process
    # group of ansible-playbook alone would leave the worker and its command running.
    # on_kill: the task was stopped (from another thread here; Airflow calls it from its SIGTERM
    # handler); timeout: the operator's ansible_timeout; interrupted: an exception raised into the
    # run by a signal handler, as Airflow's execution_timeout does with SIGALRM.
    import signal

    marker = "qa-stop-%s-%d" % (stop, os.getpid())
    play = ("- hosts: all\n  gather_facts: false\n  tasks:\n"
            "    - ansible.builtin.command: %s -c 'import time; time.sleep(300)' %s\n" % (sys.executable, marker))
    hook = AnsibleHook()
    expected = {"on_kill": (AnsibleRunFailed, "cancelled"),
                "timeout": (AnsibleRunFailed, "did not finish within 4s"),
                "interrupted": (_Interrupted, None)}[stop]
    if stop == "on_kill":
        threading.Timer(4, hook.on_kill).start()
    previous = signal.signal(signal.SIGALRM, _interrupt)
    if stop == "interrupted":
        signal.alarm(4)
    start = time.monotonic()
    try:
        with pytest.raises(expected[0], match=expected[1]):
            hook.run(marker + ".yml", LOCAL, files={marker + ".yml": play}, on_line=lambda line: None,
                     timeout=4 if stop == "timeout" else None)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - start < 40
    assert _play_processes(marker) == []


def test_a_task_process_killed_as_airflow_does_leaves_no_play_behind(tmp_path):
    # Airflow's supervisor stops a task with SIGTERM (the task runner's handler calls on_kill) and
    # SIGKILLs the task process 5 s later, whatever it is doing then.
    import signal

    marker = "qa-stop-supervisor-%d" % os.getpid()
    play = ("- hosts: all\n  gather_facts: false\n  tasks:\n"
            "    - ansible.builtin.command: %s -c 'import time; time.sleep(300)' %s\n" % (sys.executable, marker))
    script = tmp_path / "task.py"
    script.write_text(
        "import signal\n"
        "from qubinode_airflow.ansible.hook import AnsibleHook\n"
        "hook = AnsibleHook()\n"
        "signal.signal(signal.SIGTERM, lambda signum, frame: hook.on_kill())\n"
        "hook.run(%r, %r, files={%r: %r}, on_line=lambda line: None)\n" % (marker + ".yml", LOCAL, marker + ".yml", play))
    task = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 60
        while len(_play_processes(marker)) < 3 and time.monotonic() < deadline:  # playbook, worker, command
            time.sleep(0.5)
        assert len(_play_processes(marker)) >= 3, "the play did not start"
        task.send_signal(signal.SIGTERM)
        try:
            task.wait(5)
        except subprocess.TimeoutExpired:
            task.kill()
            task.wait()
        time.sleep(1)
        assert _play_processes(marker) == []
    finally:
        for proc in _play_processes(marker):
            proc.kill()


def test_run_leaves_no_private_files(monkeypatch, tmp_path):
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    AnsibleHook().run("play.yml", LOCAL, {"x": 1}, files={"play.yml": "- hosts: all\n  gather_facts: false\n  tasks: []\n"},
                      on_line=lambda line: None)
    assert list(tmp_path.iterdir()) == []
