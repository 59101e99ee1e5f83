"""The modules as a playbook runs them: check mode, diff, -vvv output free of secrets, ansible-doc."""

from __future__ import annotations

import os
import subprocess

import pytest
from fake_airflow import FakeAirflow

SECRETS = ["api-pass-9f2c", "conn-pass-71ab", "extra-token-5d3e", "var-secret-c0de"]

PLAY = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/qubinode.airflow.airflow:
      api_url: {url}
      api_password: api-pass-9f2c
  tasks:
    - name: Connections
      qubinode.airflow.airflow_connection:
        connections:
          - conn_id: warehouse
            conn_type: postgres
            host: db.example.com
            password: conn-pass-71ab
          - conn_id: chat
            conn_type: http
            secret_extra: {{webhook: extra-token-5d3e}}
    - name: Variables
      qubinode.airflow.airflow_variable:
        variables:
          - {{key: environment, value: production}}
          - {{key: deploy_key, secret_value: var-secret-c0de}}
    - name: Pools
      qubinode.airflow.airflow_pool:
        name: kvm_builds
        slots: 2
"""


@pytest.fixture
def fake():
    with FakeAirflow(password="api-pass-9f2c") as server:
        yield server


def test_check_apply_rerun_with_secrets_hidden_at_vvv(fake, run_playbook):
    play = PLAY.format(url=fake.url)
    check = run_playbook(play, "--check", "--diff", verbose=True)
    assert check.rc == 0, check.output
    assert "changed=3" in check.output and fake.calls("PATCH") == []
    applied = run_playbook(play, "--diff", verbose=True)
    assert applied.rc == 0, applied.output
    assert "changed=3" in applied.output
    assert fake.store["connections"]["warehouse"]["password"] == "conn-pass-71ab"
    assert fake.store["connections"]["chat"]["extra"] == {"webhook": "extra-token-5d3e"}
    assert fake.store["variables"]["deploy_key"]["value"] == "var-secret-c0de"
    again = run_playbook(play, "--diff", verbose=True)
    assert again.rc == 0 and "changed=0" in again.output, again.output
    for run in (check, applied, again):
        for secret in SECRETS:
            assert secret not in run.output


def test_bad_input_fails_with_the_field_named(fake, run_playbook):
    run = run_playbook("""
        - hosts: localhost
          gather_facts: false
          tasks:
            - qubinode.airflow.airflow_pool:
                api_url: %s
                api_password: api-pass-9f2c
                pools: [{name: kvm_builds}]
        """ % fake.url)
    assert run.rc != 0
    assert "pools[0] (kvm_builds): slots must be a number of slots" in run.output


@pytest.mark.parametrize("kind, plugin, option", [
    ("module", "airflow_connection", "api_url"),
    ("module", "airflow_variable", "api_url"),
    ("module", "airflow_pool", "api_url"),
    ("module", "airflow_dag_repo", "ssh_private_key"),
    ("module", "airflow_dag_bundles", "api_url"),
    ("lookup", "dag_repo_manifest", "repositories"),
    ("module", "airflow_engine", "temporal_address"),
])
def test_ansible_doc_renders(kind, plugin, option):
    proc = subprocess.run(["ansible-doc", "-t", kind, "qubinode.airflow." + plugin], capture_output=True,
                          text=True, env=dict(os.environ), check=False)
    assert proc.returncode == 0, proc.stderr
    assert option in proc.stdout and "EXAMPLES" in proc.stdout
    assert "WARNING" not in proc.stderr
