"""platform_error: the one list of supported operating systems every role checks against."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.qubinode.airflow.plugins.filter.platform_error import platform_error


def facts(family, distribution, version):
    return {"os_family": family, "distribution": distribution, "distribution_version": version,
            "distribution_major_version": version.split(".")[0]}


@pytest.mark.parametrize("host", [
    facts("Debian", "Debian", "12.7"),
    facts("RedHat", "RedHat", "9.4"),
    facts("RedHat", "Rocky", "9.5"),
    facts("RedHat", "AlmaLinux", "9.5"),
    facts("RedHat", "CentOS", "9"),
    facts("RedHat", "Fedora", "41"),
])
def test_supported_systems_pass(host):
    assert platform_error(host, "qubinode.airflow.airflow") == ""


@pytest.mark.parametrize("host, named", [
    (facts("Debian", "Debian", "11.9"), "Debian 11.9"),
    (facts("Debian", "Ubuntu", "24.04"), "Ubuntu 24.04"),
    (facts("Debian", "Ubuntu", "12.04"), "Ubuntu 12.04"),
    (facts("RedHat", "RedHat", "8.10"), "RedHat 8.10"),
    (facts("Suse", "openSUSE Leap", "15.6"), "openSUSE Leap 15.6"),
    ({}, "an unknown system"),
])
def test_other_systems_are_named_with_the_role_and_the_supported_list(host, named):
    said = platform_error(host, "qubinode.airflow.temporal")
    assert said.startswith(named + " is not supported by qubinode.airflow.temporal.")
    assert said.endswith("Supported: Debian 12, RHEL/Rocky/AlmaLinux/CentOS Stream 9, Fedora.")


def test_something_that_is_not_facts_is_refused():
    with pytest.raises(AnsibleFilterError, match="ansible_facts"):
        platform_error("Debian")
