"""Bad input stops a role before it changes anything, with a message naming the variable."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the secrets dependency writes a root-owned file")

PLAY = """
- hosts: localhost
  gather_facts: true
  vars:
    secrets_store_path: {store}
    secrets_record_path: {store}.record/record.yml
  roles:
    - role: qubinode.airflow.{role}
"""

# The roles read facts through ansible_facts; an extra var of that name stands in for another OS.
UBUNTU = ["-e", json.dumps({"ansible_facts": {"os_family": "Debian", "distribution": "Ubuntu",
                                              "distribution_version": "24.04",
                                              "distribution_major_version": "24"}})]


@pytest.mark.parametrize("role", ["postgresql", "airflow"])
def test_unsupported_os_fails_early_listing_supported_ones(run_playbook, tmp_path, role):
    result = run_playbook(PLAY.format(role=role, store=tmp_path / "s.yml"), *UBUNTU)
    assert result.rc != 0
    assert f"Ubuntu 24.04 is not supported by qubinode.airflow.{role}" in result.output
    assert "Supported: Debian 12, RHEL/Rocky/AlmaLinux/CentOS Stream 9, Fedora" in result.output
    assert result.changed <= 4  # only the secrets file, the record of its fingerprints and their directories


@pytest.mark.parametrize(
    ("role", "var", "value"),
    [
        ("postgresql", "postgresql_port", "not-a-port"),
        ("postgresql", "postgresql_max_connections", "lots"),
        ("airflow", "airflow_api_port", "eighty"),
        ("airflow", "airflow_serve_logs", "maybe"),
    ],
)
def test_wrong_type_names_the_variable(run_playbook, tmp_path, role, var, value):
    result = run_playbook(PLAY.format(role=role, store=tmp_path / "s.yml"), "-e", f"{var}={value}")
    assert result.rc != 0
    assert "Validation of arguments failed" in result.output
    assert var in result.output


@pytest.mark.parametrize(("address", "method", "says"), [
    ("10.0.0.0/8", "trust", "postgresql_hba_extra[0].method 'trust' is not allowed for host entries"),
    ("10.0.0.0/8", "ident", "postgresql_hba_extra[0].method 'ident' is not allowed for host entries"),
    # a second line smuggled through the address field
    ("0.0.0.0/0 trust #", "scram-sha-256", "postgresql_hba_extra[0].address '0.0.0.0/0 trust #'"),
])
def test_unsafe_extra_hba_lines_are_refused_before_any_change(run_playbook, tmp_path, address, method, says):
    extra = json.dumps({"postgresql_hba_extra": [{"database": "all", "user": "all", "address": address,
                                                  "method": method}]})
    result = run_playbook(PLAY.format(role="postgresql", store=tmp_path / "s.yml"), "-e", extra)
    assert result.rc != 0
    assert says in result.output
    assert result.changed <= 4  # only the secrets file, the record of its fingerprints and their directories


@pytest.mark.parametrize(("config", "says"), [
    ({"core": {"executor": "LocalExecutor\n[database]\nsql_alchemy_conn = sqlite:////tmp/x"}},
     "airflow_config.core.executor holds a line break"),
    ({"core": {"a = b": 1}}, "airflow_config.core: key 'a = b' is not a plain name"),
])
def test_airflow_config_that_would_inject_a_key_is_refused_before_any_change(run_playbook, tmp_path, config, says):
    result = run_playbook(PLAY.format(role="airflow", store=tmp_path / "s.yml"), "-e",
                          json.dumps({"airflow_config": config}))
    assert result.rc != 0
    assert says in result.output
    assert result.changed <= 4  # only the secrets file, the record of its fingerprints and their directories


def test_the_validation_user_cannot_be_the_airflow_user(run_playbook, tmp_path):
    result = run_playbook(PLAY.format(role="airflow", store=tmp_path / "s.yml"), "-e", "airflow_validation_user=airflow")
    assert result.rc != 0
    assert "airflow_validation_user airflow must be a user of its own" in result.output


def test_other_airflow_version_needs_constraints(run_playbook, tmp_path):
    result = run_playbook(PLAY.format(role="airflow", store=tmp_path / "s.yml"), "-e", "airflow_version=3.4.0")
    assert result.rc != 0
    assert "airflow_version 3.4.0 has no constraints set shipped" in result.output
