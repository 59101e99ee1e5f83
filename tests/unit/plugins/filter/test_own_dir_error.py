"""own_dir_error: the one check of a directory a role makes root-only."""

from __future__ import annotations

import pytest

from ansible_collections.qubinode.airflow.plugins.filter.own_dir_error import SHARED_DIRS, own_dir_error


@pytest.mark.parametrize("path", ["/var/backups/qubinode-airflow", "/etc/qubinode-airflow", "/srv/backups/airflow"])
def test_a_directory_of_its_own_passes(path):
    assert own_dir_error(path, "backup_dir", "/var/backups/x") == ""


@pytest.mark.parametrize(("path", "problem"), [
    ("/etc", "is a directory the system shares"),
    ("/", "is a directory the system shares"),
    ("/var/backups", "is a directory the system shares"),
    ("/var/backups/x/../../../etc", "is not normalized (write it as /etc)"),
    ("/var/backups/x/", "is not normalized (write it as /var/backups/x)"),
    ("//etc", "is not normalized (write it as /etc)"),
    ("backups", "is not an absolute path on one line"),
    ("/var/backups/x\n/etc", "is not an absolute path on one line"),
    ("", "is not a path"),
    (None, "is not a path"),
    (["/var/backups/x"], "is not a path"),
])
def test_other_paths_are_refused_naming_the_setting_and_an_example(path, problem):
    said = own_dir_error(path, "backup_dir", "/var/backups/qubinode-airflow")
    assert said.startswith("backup_dir (%r) %s." % (path, problem))
    assert said.endswith("For example: /var/backups/qubinode-airflow.")


def test_every_shared_directory_is_normalized_and_absolute():
    """A shared directory written otherwise could never match a checked (normalized) path."""
    for path in SHARED_DIRS:
        assert own_dir_error(path, "x", "/y").startswith("x (%r) is a directory the system shares" % path)
