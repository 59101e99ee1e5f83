"""airflow_engine against a real Temporal server on loopback (the `temporal` fixture)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT


PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - qubinode.airflow.airflow_engine:
        engine: {engine}
        temporal_address: {address}
        temporal_namespace: {namespace}
        airflow_config_dir: {config}
        airflow_venv: {venv}
        airflow_user: "{user}"
"""


@pytest.fixture
def host(tmp_path):
    """A config dir, and an 'Airflow venv' whose python is this one with the provider package on its path."""
    config = tmp_path / "etc"
    config.mkdir()
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text("#!/bin/sh\nPYTHONPATH=%s exec %s \"$@\"\n" % (ROOT / "provider" / "src", sys.executable))
    python.chmod(0o755)
    return config, venv


def play(engine, address, config, venv, namespace="airflow"):
    return PLAY.format(engine=engine, address=address, namespace=namespace, config=config, venv=venv, user="")


def test_switch_to_temporal_and_back(temporal, host, run_playbook):
    config, venv = host
    env_file = config / "orchestrator.env"
    check = run_playbook(play("temporal", temporal, config, venv), "--check", "--diff")
    assert check.rc == 0, check.output
    assert check.changed == 1 and not env_file.exists()
    applied = run_playbook(play("temporal", temporal, config, venv))
    assert applied.rc == 0 and applied.changed == 1, applied.output
    text = env_file.read_text()
    assert "AIRFLOW__CORE__EXECUTOR=Temporal:qubinode_airflow.temporal.executor.TemporalExecutor,LocalExecutor" in text
    assert "AIRFLOW__QUBINODE_TEMPORAL__ADDRESS=%s" % temporal in text
    again = run_playbook(play("temporal", temporal, config, venv))
    assert again.rc == 0 and again.changed == 0, again.output
    back = run_playbook(play("airflow", temporal, config, venv))
    assert back.rc == 0 and back.changed == 1
    assert "AIRFLOW__CORE__EXECUTOR=LocalExecutor" in env_file.read_text()
    assert "TEMPORAL" not in env_file.read_text()
    assert run_playbook(play("airflow", temporal, config, venv)).changed == 0


def test_settings_are_what_the_services_and_the_provider_read(temporal, host, run_playbook):
    config, venv = host
    assert run_playbook(play("temporal", temporal, config, venv)).rc == 0
    # Exactly as systemd's EnvironmentFile= and the airflow wrapper read it: as sh assignments.
    out = subprocess.run(["sh", "-c", "set -a; . %s; env" % (config / "orchestrator.env")],
                         capture_output=True, text=True, check=True).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("AIRFLOW__"))
    sys.path.insert(0, str(ROOT / "provider" / "src"))
    from qubinode_airflow.temporal.codec import Settings

    settings = Settings.from_getter(
        lambda name, default: env.get("AIRFLOW__QUBINODE_TEMPORAL__" + name.upper(), default))
    assert (settings.address, settings.namespace, settings.task_queue) == (temporal, "airflow", "airflow-tasks")


@pytest.mark.parametrize("address,namespace,expect", [
    ("TEMPORAL", "nope", "namespace 'nope' does not exist"),
    ("127.0.0.1:1", "airflow", "Temporal at 127.0.0.1:1 is not reachable"),
    ("temporal-without-port", "airflow", "temporal_address 'temporal-without-port': give host:port"),
])
def test_an_unusable_temporal_changes_nothing(temporal, host, run_playbook, address, namespace, expect):
    config, venv = host
    assert run_playbook(play("airflow", temporal, config, venv)).rc == 0
    before = (config / "orchestrator.env").read_text()
    address = temporal if address == "TEMPORAL" else address
    refused = run_playbook(play("temporal", address, config, venv, namespace=namespace))
    assert refused.rc != 0 and expect in refused.output, refused.output
    assert (config / "orchestrator.env").read_text() == before


def test_provider_settings_name_the_bad_option():
    sys.path.insert(0, str(ROOT / "provider" / "src"))
    from qubinode_airflow.temporal.codec import Settings

    values = {"heartbeat_timeout": "soon", "address": "127.0.0.1:7233"}
    with pytest.raises(ValueError, match=r"\[qubinode_temporal\] heartbeat_timeout = 'soon'"):
        Settings.from_getter(values.get)


def test_the_old_module_name_still_works_and_warns(host, run_playbook):
    config, venv = host
    run = run_playbook(play("airflow", "127.0.0.1:1", config, venv).replace(
        "qubinode.airflow.airflow_engine:", "qubinode.airflow.airflow_orchestrator:"))
    assert run.rc == 0 and run.changed == 1, run.output
    assert "AIRFLOW__CORE__EXECUTOR=LocalExecutor" in (config / "orchestrator.env").read_text()
    said = " ".join(run.output.split())  # ansible-core 2.17 and 2.18 wrap warnings
    assert "qubinode.airflow.airflow_orchestrator has been deprecated" in said
    assert "Use qubinode.airflow.airflow_engine" in said


ENTRY_POINT = """
- hosts: localhost
  gather_facts: true
  vars:
    airflow_orchestrator: {engine}
    airflow_temporal_address: 127.0.0.1:1
    airflow_config_dir: {config}
    airflow_venv: {venv}
    airflow_user: ""
    # The role's secrets dependency keeps its files in the test's directory, not in the machine's /etc.
    secrets_store_path: {config.parent}/secrets/secrets.yml
    secrets_record_path: {config.parent}/secrets/record.yml
  tasks:
    - ansible.builtin.include_role:
        name: qubinode.airflow.airflow
        tasks_from: engine
"""


def test_the_old_variable_name_is_read_and_warns(host, run_playbook):
    """The airflow role's engine entry point reads airflow_orchestrator when airflow_engine is not set."""
    config, venv = host
    assert run_playbook(play("airflow", "127.0.0.1:1", config, venv)).rc == 0
    # (The first run through the role writes its secrets dependency's files.)
    assert run_playbook(ENTRY_POINT.format(engine="airflow", config=config, venv=venv)).rc == 0
    same = run_playbook(ENTRY_POINT.format(engine="airflow", config=config, venv=venv))
    assert same.rc == 0 and same.changed == 0, same.output
    assert "airflow_orchestrator is deprecated" in same.output and "airflow_engine=airflow" in same.output
    # The alias's value is the one used: Temporal is asked for, and the unreachable address refused.
    switched = run_playbook(ENTRY_POINT.format(engine="temporal", config=config, venv=venv))
    assert switched.rc != 0 and "Temporal at 127.0.0.1:1 is not reachable" in switched.output, switched.output
    assert "AIRFLOW__CORE__EXECUTOR=LocalExecutor" in (config / "orchestrator.env").read_text()
