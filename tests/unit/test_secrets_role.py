"""The secrets role on the real localhost: generate once, keep, never print."""

from __future__ import annotations

import os
import stat

import pytest
import yaml
from cryptography.fernet import Fernet

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the role writes a root-owned file")

NAMES = {
    "airflow_fernet_key",
    "airflow_jwt_secret",
    "airflow_api_secret_key",
    "airflow_admin_password",
    "airflow_db_password",
    "temporal_db_password",
    "airflow_webhook_secret",
}

PLAY = """
- hosts: localhost
  gather_facts: false
  roles:
    - role: qubinode.airflow.secrets
      secrets_store_path: {path}
  tasks:
    - name: Use a secret the way the roles do
      ansible.builtin.copy:
        content: "{{{{ secrets_values.airflow_fernet_key }}}}"
        dest: {path}.used
        mode: "0600"
      no_log: true
"""


@pytest.fixture
def store(tmp_path):
    return tmp_path / "store" / "secrets.yml"


def load(path):
    return yaml.safe_load(path.read_text())


def test_first_run_generates_every_secret_root_only(run_playbook, store):
    result = run_playbook(PLAY.format(path=store))
    assert result.rc == 0, result.output
    assert result.changed >= 1
    secrets = load(store)
    assert set(secrets) == NAMES
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    assert len(set(secrets.values())) == len(NAMES), "every secret is distinct"
    Fernet(secrets["airflow_fernet_key"].encode())  # a usable key, not just the right length
    assert (store.parent / "secrets.yml.used").read_text() == secrets["airflow_fernet_key"]


def test_second_run_keeps_secrets_and_changes_nothing(run_playbook, store):
    assert run_playbook(PLAY.format(path=store)).rc == 0
    before = store.read_bytes()
    again = run_playbook(PLAY.format(path=store))
    assert again.rc == 0, again.output
    assert again.changed == 0
    assert store.read_bytes() == before


@pytest.mark.parametrize("name", ["airflow_admin_password", "airflow_fernet_key"])
def test_supplied_value_wins_and_is_kept(run_playbook, store, name):
    assert run_playbook(PLAY.format(path=store)).rc == 0
    generated = load(store)
    supplied = Fernet.generate_key().decode() if name == "airflow_fernet_key" else "from-the-vault-42"
    result = run_playbook(PLAY.format(path=store), "-e", f"{name}={supplied}")
    assert result.rc == 0, result.output
    after = load(store)
    assert after[name] == supplied
    assert {k: v for k, v in after.items() if k != name} == {k: v for k, v in generated.items() if k != name}


def test_bad_fernet_key_fails_naming_the_variable_and_keeps_the_file(run_playbook, store):
    assert run_playbook(PLAY.format(path=store)).rc == 0
    before = store.read_bytes()
    result = run_playbook(PLAY.format(path=store), "-e", "airflow_fernet_key=not-a-key")
    assert result.rc != 0
    assert "airflow_fernet_key must be 44 characters" in result.output
    assert "not-a-key" not in result.output
    assert store.read_bytes() == before


def test_check_mode_writes_nothing(run_playbook, store):
    result = run_playbook(PLAY.format(path=store), "--check")
    assert result.rc == 0, result.output
    assert result.changed >= 1, "check mode tells that the file would be written"
    assert not store.exists()


def test_no_secret_in_output_even_at_vvv(run_playbook, store):
    result = run_playbook(PLAY.format(path=store), verbose=True)
    assert result.rc == 0, result.output
    second = run_playbook(PLAY.format(path=store), "--diff", verbose=True)
    assert second.rc == 0, second.output
    for name, value in load(store).items():
        assert value not in result.output, f"{name} printed on first run"
        assert value not in second.output, f"{name} printed on second run"
