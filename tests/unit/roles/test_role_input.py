"""Bad input stops a role before it changes anything, with a message naming the variable."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the roles write root-owned files")

PLAY = """
- hosts: localhost
  gather_facts: true
  vars:
    secrets_store_path: {store}
    secrets_record_path: {store}.record/record.yml
    secrets_tls_dir: {store}.tls
    secrets_crypto_packages: []
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
    assert result.changed == 0 and not (tmp_path / "s.yml").exists()  # not even the secrets store


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
    assert result.changed == 0 and not (tmp_path / "s.yml").exists()  # not even the secrets store


@pytest.mark.parametrize(("address", "method", "says"), [
    ("10.0.0.0/8", "trust", "postgresql_hba_extra[0].method 'trust' is not allowed for hostssl entries"),
    ("10.0.0.0/8", "ident", "postgresql_hba_extra[0].method 'ident' is not allowed for hostssl entries"),
    # a second line smuggled through the address field
    ("0.0.0.0/0 trust #", "scram-sha-256", "postgresql_hba_extra[0].address '0.0.0.0/0 trust #'"),
])
def test_unsafe_extra_hba_lines_are_refused_before_any_change(run_playbook, tmp_path, address, method, says):
    extra = json.dumps({"postgresql_hba_extra": [{"database": "all", "user": "all", "address": address,
                                                  "method": method}]})
    result = run_playbook(PLAY.format(role="postgresql", store=tmp_path / "s.yml"), "-e", extra)
    assert result.rc != 0
    assert says in result.output
    assert result.changed == 0 and not (tmp_path / "s.yml").exists()  # not even the secrets store


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
    assert result.changed == 0 and not (tmp_path / "s.yml").exists()  # not even the secrets store


def test_the_validation_user_cannot_be_the_airflow_user(run_playbook, tmp_path):
    result = run_playbook(PLAY.format(role="airflow", store=tmp_path / "s.yml"), "-e", "airflow_validation_user=airflow")
    assert result.rc != 0
    assert "airflow_validation_user airflow must be a user of its own" in result.output
    assert result.changed == 0 and not (tmp_path / "s.yml").exists()  # not even the secrets store


def test_an_upgrade_keeps_at_least_its_own_dump(run_playbook, tmp_path):
    result = run_playbook(PLAY.format(role="airflow", store=tmp_path / "s.yml"), "-e",
                          json.dumps({"airflow_upgrade_backups_keep": 0}))
    assert result.rc != 0
    assert "airflow_upgrade_backups_keep is 0: a successful upgrade keeps its own dump at least" in result.output
    assert result.changed == 0 and not (tmp_path / "s.yml").exists()  # not even the secrets store


@pytest.mark.parametrize(("value", "says"), [
    ("/etc", "airflow_upgrade_backup_dir ('/etc') is a directory the system shares"),
    ("/var/backups/../../etc", "airflow_upgrade_backup_dir ('/var/backups/../../etc') is not normalized"),
    ("dumps", "airflow_upgrade_backup_dir ('dumps') is not an absolute path on one line"),
])
def test_the_upgrade_dump_directory_is_checked_before_any_change(run_playbook, tmp_path, value, says):
    """The default passes that check: the validation-user test above fails after it."""
    etc_mode = os.stat("/etc").st_mode
    result = run_playbook(PLAY.format(role="airflow", store=tmp_path / "s.yml"), "-e",
                          json.dumps({"airflow_upgrade_backup_dir": value}))
    assert result.rc != 0
    assert says in result.output
    assert result.changed == 0 and not (tmp_path / "s.yml").exists()  # not even the secrets store
    assert os.stat("/etc").st_mode == etc_mode


def test_other_airflow_version_needs_constraints(run_playbook, tmp_path):
    result = run_playbook(PLAY.format(role="airflow", store=tmp_path / "s.yml"), "-e", "airflow_version=3.4.0")
    assert result.rc != 0
    assert "airflow_version 3.4.0 has no constraints set shipped" in result.output
    assert result.changed == 0 and not (tmp_path / "s.yml").exists()  # not even the secrets store


BACKUP_PLAY = """
- hosts: localhost
  gather_facts: false
  vars:
    backup_secrets_store_path: {store}
    backup_status_file: {tmp}/status.json
  roles:
    - role: qubinode.airflow.backup
"""


@pytest.mark.parametrize(("var", "value", "says"), [
    ("backup_dir", "backups", "backup_dir ('backups') is not an absolute path on one line"),
    ("backup_dir", "/var/backups/x/../../../etc",
     "backup_dir ('/var/backups/x/../../../etc') is not normalized (write it as /etc)"),
    ("backup_dir", "/etc", "backup_dir ('/etc') is a directory the system shares"),
    ("backup_dir", "/", "backup_dir ('/') is a directory the system shares"),
    # a second line would add a directive (an ExecStartPre=) to the timer's unit
    ("backup_schedule", "daily\n[Service]\nExecStartPre=/bin/sh -c id", "backup_schedule must be one systemd"),
    ("backup_schedule", "daily\rExecStartPre=/bin/true", "backup_schedule must be one systemd"),
    ("backup_keep_daily", 0, "backup_keep_daily must be at least 1"),
    ("backup_secrets_certificate", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
     "backup_secrets_certificate must be empty or the PEM of an X.509 certificate"),
])
def test_bad_backup_settings_are_refused_naming_the_variable_before_any_change(run_playbook, tmp_path, var,
                                                                               value, says):
    result = run_playbook(BACKUP_PLAY.format(store=tmp_path / "s.yml", tmp=tmp_path), "-e", json.dumps({var: value}))
    assert result.rc != 0
    assert says in result.output
    assert result.changed == 0
    assert list(tmp_path.iterdir()) == [tmp_path / "play.yml"]


RESTORE_PLAY = """
- name: Restore
  ansible.builtin.import_playbook: qubinode.airflow.restore
"""


@pytest.mark.parametrize(("extra", "says"), [
    ({"restore_set": "../../etc"}, 'restore_set must be latest (the default) or the name of a set'),
    ({"restore_set": "20261201T020000Z/../../x"}, 'restore_set must be latest (the default) or the name of a set'),
    ({"restore_set": "latest\n"}, 'restore_set must be latest (the default) or the name of a set'),
    ({"restore_force": "maybe"}, "restore_force must be true or false"),
    ({"backup_copy_host": "nowhere"}, "backup_copy_host (nowhere) must be a host of the inventory"),
    ({"backup_copy_host": "localhost", "backup_copy_dir": "/var/backups/../../etc"},
     "backup_copy_dir ('/var/backups/../../etc') is not normalized"),
])
def test_hostile_restore_vars_are_refused_before_any_change(run_playbook, tmp_path, extra, says):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"airflow_core": {"hosts": {"localhost": {"ansible_connection": "local"}}}}))
    extra = dict(extra, backup_dir=str(tmp_path / "backups"))
    result = run_playbook(RESTORE_PLAY, "-i", str(inventory), "-e", json.dumps(extra))
    assert result.rc != 0
    assert says in result.output
    assert result.changed == 0
    assert not (tmp_path / "backups").exists()


@pytest.mark.parametrize("copy_host", [False, True])
def test_a_missing_set_is_named_with_and_without_a_backup_host(run_playbook, tmp_path, copy_host):
    """No set on the host (nor a copy): the restore says where it looked, before any change."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"airflow_core": {"hosts": {"localhost": {"ansible_connection": "local"}}}}))
    extra = {"backup_dir": str(tmp_path / "backups")}
    if copy_host:
        extra.update(backup_copy_host="localhost", backup_copy_dir=str(tmp_path / "copies"))
    result = run_playbook(RESTORE_PLAY, "-i", str(inventory), "-e", json.dumps(extra))
    assert result.rc != 0
    assert "No backup set latest in %s on localhost (sets: none)" % (tmp_path / "backups") in result.output
    assert ("nor among its copies in %s/localhost on localhost (copies: none)" % (tmp_path / "copies")
            in result.output) is copy_host
    assert result.changed == 0
    assert not (tmp_path / "backups").exists()


def test_a_copy_that_names_a_path_outside_its_set_is_refused_before_any_copy(run_playbook, tmp_path):
    """The backup host's manifest names the files a rebuilt host fetches: "../" in a name is refused."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"airflow_core": {"hosts": {"localhost": {"ansible_connection": "local"}}}}))
    hostile = tmp_path / "copies" / "localhost" / "20990101T000000Z"
    hostile.mkdir(parents=True)
    (hostile / "manifest.json").write_text(json.dumps({"time": "2099-01-01T00:00:00+0000",
                                                       "files": {"../../escaped": {"sha256": "0" * 64}}}))
    extra = {"backup_dir": str(tmp_path / "backups"), "backup_copy_host": "localhost",
             "backup_copy_dir": str(tmp_path / "copies")}
    result = run_playbook(RESTORE_PLAY, "-i", str(inventory), "-e", json.dumps(extra))
    assert result.rc != 0
    assert "names files that are not plain file names" in result.output and "../../escaped" in result.output
    assert result.changed == 0
    assert not (tmp_path / "backups").exists() and not (tmp_path / "escaped").exists()


def write_set(directory, name, contents, files=None):
    """A backup set as the backup command writes it: its files and a manifest with their SHA-256."""
    directory.mkdir(parents=True, mode=0o700)
    digests = {}
    for file_name, data in (files or {}).items():
        (directory / file_name).write_bytes(data)
        digests[file_name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (directory / "manifest.json").write_text(json.dumps({"set": name, "time": "%s-%s-%sT%s:%s:%s+00:00" % (
        name[:4], name[4:6], name[6:8], name[9:11], name[11:13], name[13:15]), "contents": contents, "files": digests}))


@pytest.mark.parametrize("newest_on_copy_host", [False, True])
def test_the_newest_set_of_an_emptied_database_is_not_taken_for_latest(run_playbook, tmp_path, newest_on_copy_host):
    """A rebuilt host's timer takes a set of its new, empty database before the restore: "latest" refuses it when
    the set before holds DAG runs, naming both ways out, before anything is copied or changed."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"airflow_db": {"hosts": {"localhost": {"ansible_connection": "local"}}}}))
    db = {"postgresql": ["airflow"]}
    write_set(tmp_path / "backups" / "20261201T020000Z", "20261201T020000Z", dict(db, airflow_dag_runs=7))
    newest = tmp_path / ("copies/localhost" if newest_on_copy_host else "backups") / "20261202T020000Z"
    write_set(newest, "20261202T020000Z", dict(db, airflow_dag_runs=0))
    extra = {"backup_dir": str(tmp_path / "backups"), "backup_copy_host": "localhost",
             "backup_copy_dir": str(tmp_path / "copies")}
    result = run_playbook(RESTORE_PLAY, "-i", str(inventory), "-e", json.dumps(extra))
    assert result.rc != 0
    assert ("The newest set of localhost, 20261202T020000Z, holds a metadata database without any DAG run, while the "
            "set before it, 20261201T020000Z, holds 7") in result.output
    assert "restore_set=20261201T020000Z (or restore_set=20261202T020000Z" in result.output
    assert result.changed == 0
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == (
        ["20261201T020000Z"] if newest_on_copy_host else ["20261201T020000Z", "20261202T020000Z"])
    # Named, the empty set passes this check (and fails later here: no PostgreSQL on this machine).
    result = run_playbook(RESTORE_PLAY, "-i", str(inventory), "-e",
                          json.dumps(dict(extra, restore_set="20261202T020000Z")))
    assert result.rc != 0 and "without any DAG run" not in result.output


def test_a_set_comes_back_from_the_backup_host_root_only_through_a_removed_controller_directory(
        run_playbook, tmp_path):
    """The rebuilt host's set is fetched from its copy (here on the same machine) and put in backup_dir 0700/0600;
    the controller's directory is gone whatever happens next (here a wrong key stops the restore)."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"airflow_core": {"hosts": {"localhost": {"ansible_connection": "local"}}}}))
    name = "20261201T020000Z"
    write_set(tmp_path / "copies" / "localhost" / name, name, {"secrets": "encrypted"},
              {"secrets.yml.cms": b"not a CMS message"})
    temp = tmp_path / "controller-tmp"
    temp.mkdir()
    extra = {"backup_dir": str(tmp_path / "backups"), "backup_copy_host": "localhost",
             "backup_copy_dir": str(tmp_path / "copies"), "restore_secrets_key": "not a key"}
    os.environ["TMPDIR"] = str(temp)
    try:
        result = run_playbook(RESTORE_PLAY, "-i", str(inventory), "-e", json.dumps(extra))
    finally:
        del os.environ["TMPDIR"]
    assert result.rc != 0
    # The refusal of the key (its message is hidden: the task handles the store's content)
    plays = json.loads(result.output[:result.output.rindex("}") + 1])["plays"]
    failed = [t["task"]["name"] for play in plays for t in play["tasks"] if t["hosts"].get("localhost", {}).get("failed")]
    assert failed == ["The key opens it"]
    back = tmp_path / "backups" / name
    assert sorted(p.name for p in back.iterdir()) == ["manifest.json", "secrets.yml.cms"]
    assert (back / "secrets.yml.cms").read_bytes() == b"not a CMS message"
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [tmp_path / "backups", back, *back.iterdir()]}
    assert modes == {tmp_path / "backups": 0o700, back: 0o700, **{p: 0o600 for p in back.iterdir()}}
    assert {p.stat().st_uid for p in modes} == {0}
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize(("extra", "says"), [
    ({"backup_copy_host": "nowhere"}, "backup_copy_host (nowhere) must be a host of the inventory"),
    ({"backup_copy_host": "localhost", "backup_copy_dir": "/var/backups/../../etc"},
     "backup_copy_dir ('/var/backups/../../etc') is not normalized"),
    ({"backup_copy_host": "localhost", "backup_copy_dir": "/root"}, "backup_copy_dir ('/root') is a directory the"),
    ({"backup_copy_host": "localhost", "backup_copy_keep": 0}, "backup_copy_keep must be at least 1"),
])
def test_bad_copy_settings_are_refused_before_a_backup_is_taken(run_playbook, tmp_path, extra, says):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"airflow_core": {"hosts": {"localhost": {"ansible_connection": "local"}}}}))
    result = run_playbook("- name: Back up\n  ansible.builtin.import_playbook: qubinode.airflow.backup\n",
                          "-i", str(inventory), "-e", json.dumps(extra))
    assert result.rc != 0
    assert says in result.output
    assert result.stats.get("ok", 0) == 0  # not even the look for the backup configuration ran


@pytest.mark.parametrize("copy_host", [None, ""])
def test_without_a_backup_host_the_backup_copies_nothing(run_playbook, tmp_path, copy_host):
    """Most sites name no backup host (or an empty one): the copy play is skipped, it does not fail."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"airflow_core": {"hosts": {"localhost": {"ansible_connection": "local"}}}}))
    extra = {} if copy_host is None else {"backup_copy_host": copy_host}
    result = run_playbook("- name: Back up\n  ansible.builtin.import_playbook: qubinode.airflow.backup\n",
                          "-i", str(inventory), "-e", json.dumps(extra))
    assert result.rc == 0, result.output[-2000:]
    assert result.changed == 0


@pytest.mark.parametrize(("var", "value"), [("temporal_worker_concurrency", 0), ("temporal_worker_drain_timeout", -1)])
def test_bad_worker_settings_are_refused_naming_the_variable_before_any_change(run_playbook, tmp_path, var, value):
    result = run_playbook(PLAY.format(role="temporal_worker", store=tmp_path / "s.yml"), "-e",
                          json.dumps({var: value}))
    assert result.rc != 0
    assert f"{var} ({value})" in result.output
    assert result.changed == 0 and not (tmp_path / "s.yml").exists()  # not even the secrets store


@pytest.mark.parametrize("grace", ["1m30s", "90", "90s\n", "90s; rm -rf /"])
def test_a_grace_period_podman_cannot_take_is_refused_before_any_change(run_playbook, tmp_path, grace):
    """A service's stop_grace_period becomes the seconds of `podman stop --time`: refused, naming the service and
    the field, before podman is installed or a compose file written."""
    play = f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: qubinode.airflow.podman
        tasks_from: service.yml
      vars:
        podman_compose_dir: {tmp_path}/compose
        podman_component: qa
        podman_services:
          qa-ok: {{image: localhost/qa:1}}
          qa-slow: {{image: localhost/qa:1, stop_grace_period: {json.dumps(grace)}}}
"""
    result = run_playbook(play)
    assert result.rc != 0
    assert "Service qa-slow of qa: stop_grace_period" in result.output
    assert "is not whole seconds; give it as" in result.output
    assert result.changed == 0 and not (tmp_path / "compose").exists()
