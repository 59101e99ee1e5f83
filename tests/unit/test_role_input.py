"""Bad input stops a role before it changes anything, with a message naming the variable."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the secrets dependency writes a root-owned file")

PLAY = """
- hosts: localhost
  gather_facts: true
  vars:
    secrets_store_path: {store}
  roles:
    - role: qubinode.airflow.{role}
"""

UBUNTU = [
    "-e", "ansible_os_family=Debian",
    "-e", "ansible_distribution=Ubuntu",
    "-e", "ansible_distribution_version=24.04",
    "-e", "ansible_distribution_major_version=24",
]


@pytest.mark.parametrize("role", ["postgresql", "airflow"])
def test_unsupported_os_fails_early_listing_supported_ones(run_playbook, tmp_path, role):
    result = run_playbook(PLAY.format(role=role, store=tmp_path / "s.yml"), *UBUNTU)
    assert result.rc != 0
    assert f"Ubuntu 24.04 is not supported by qubinode.airflow.{role}" in result.output
    assert "Supported: Debian 12, RHEL/Rocky/AlmaLinux/CentOS Stream 9, Fedora" in result.output
    assert result.changed <= 2  # only the secrets file and its directory


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


def test_trust_in_extra_hba_lines_is_refused(run_playbook, tmp_path):
    extra = '{"postgresql_hba_extra": [{"database": "all", "user": "all", "address": "10.0.0.0/8", "method": "trust"}]}'
    result = run_playbook(PLAY.format(role="postgresql", store=tmp_path / "s.yml"), "-e", extra)
    assert result.rc != 0
    assert "postgresql_hba_extra uses trust/password/md5" in result.output


def test_other_airflow_version_needs_constraints(run_playbook, tmp_path):
    result = run_playbook(PLAY.format(role="airflow", store=tmp_path / "s.yml"), "-e", "airflow_version=3.4.0")
    assert result.rc != 0
    assert "airflow_version 3.4.0 has no constraints set shipped" in result.output
