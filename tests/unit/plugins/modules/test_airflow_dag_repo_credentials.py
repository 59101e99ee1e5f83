"""Git credentials of a DAG repository reach Airflow's connection when they change, and only then."""

from __future__ import annotations

import os
import stat

import pytest
from fake_airflow import FakeAirflow

from ansible_collections.qubinode.airflow.plugins.modules import airflow_dag_repo as mod


class Module:
    """What DagRepo reads of an AnsibleModule."""

    def __init__(self, params, check_mode=False):
        self.params = params
        self.check_mode = check_mode
        self._diff = False


@pytest.fixture
def fake():
    with FakeAirflow(password="api-pass") as server:
        yield server


def repo(fake, tmp_path, check_mode=False, **kw):
    params = dict(api_url=fake.url, api_username="admin", api_password="api-pass", api_token=None,
                  validate_certs=True, ca_path=None, api_timeout=5.0, api_retries=0,
                  name="team_a", url="https://git.example.com/dags.git", username="x-access-token",
                  token=None, ssh_private_key=None, update_secrets="on_change", state="present",
                  work_dir=str(tmp_path / "work"))
    params.update(kw)
    return mod.DagRepo(Module(params, check_mode))


def stored(fake):
    return fake.store["connections"]["qubinode_git_team_a"]


def test_a_rotated_token_reaches_the_connection_and_the_same_one_changes_nothing(fake, tmp_path):
    assert repo(fake, tmp_path, token="tok-one").credentials_connection("present") is True
    assert stored(fake)["password"] == "tok-one"
    assert repo(fake, tmp_path, token="tok-one").credentials_connection("present") is False

    assert repo(fake, tmp_path, token="tok-two").credentials_connection("present") is True
    assert stored(fake)["password"] == "tok-two"
    assert repo(fake, tmp_path, token="tok-two").credentials_connection("present") is False


def test_the_fingerprint_is_root_only_salted_and_holds_no_secret(fake, tmp_path):
    repo(fake, tmp_path, token="tok-secret-123").credentials_connection("present")
    path = tmp_path / "work" / "team_a" / mod.FINGERPRINT_FILE
    text = path.read_text()
    assert "tok-secret-123" not in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    salt = text.split(":")[0]
    repo(fake, tmp_path, token="tok-two").credentials_connection("present")
    assert (tmp_path / "work" / "team_a" / mod.FINGERPRINT_FILE).read_text().split(":")[0] != salt


def test_a_host_without_the_fingerprint_writes_the_connection_once(fake, tmp_path):
    repo(fake, tmp_path, token="tok-one", update_secrets="on_create").credentials_connection("present")
    fake.store["connections"]["qubinode_git_team_a"]["password"] = "stale"
    (tmp_path / "work" / "team_a" / mod.FINGERPRINT_FILE).unlink(missing_ok=True)
    assert repo(fake, tmp_path, token="tok-one").credentials_connection("present") is True
    assert stored(fake)["password"] == "tok-one"
    assert repo(fake, tmp_path, token="tok-one").credentials_connection("present") is False


def test_a_new_ssh_key_or_user_counts_as_a_rotation(fake, tmp_path):
    repo(fake, tmp_path, ssh_private_key="key-one").credentials_connection("present")
    assert repo(fake, tmp_path, ssh_private_key="key-two").credentials_connection("present") is True
    assert stored(fake)["extra"]
    repo(fake, tmp_path, token="tok", username="bot-a").credentials_connection("present")
    assert repo(fake, tmp_path, token="tok", username="bot-b").credentials_connection("present") is True
    assert stored(fake)["login"] == "bot-b"


def test_check_mode_reports_a_rotation_and_writes_nothing(fake, tmp_path):
    repo(fake, tmp_path, token="tok-one").credentials_connection("present")
    before = (tmp_path / "work" / "team_a" / mod.FINGERPRINT_FILE).read_text()
    assert repo(fake, tmp_path, check_mode=True, token="tok-two").credentials_connection("present") is True
    assert stored(fake)["password"] == "tok-one"
    assert (tmp_path / "work" / "team_a" / mod.FINGERPRINT_FILE).read_text() == before


def test_dropping_the_credential_removes_the_connection_and_the_fingerprint(fake, tmp_path):
    repo(fake, tmp_path, token="tok-one").credentials_connection("present")
    assert repo(fake, tmp_path).credentials_connection("absent") is True
    assert "qubinode_git_team_a" not in fake.store["connections"]
    assert not (tmp_path / "work" / "team_a" / mod.FINGERPRINT_FILE).exists()


def test_on_create_keeps_the_stored_token(fake, tmp_path):
    repo(fake, tmp_path, token="tok-one", update_secrets="on_create").credentials_connection("present")
    assert repo(fake, tmp_path, token="tok-two", update_secrets="on_create").credentials_connection("present") is False
    assert stored(fake)["password"] == "tok-one"


def test_a_token_on_create_left_out_is_written_when_the_mode_is_on_change(fake, tmp_path):
    repo(fake, tmp_path, token="tok-one").credentials_connection("present")
    assert repo(fake, tmp_path, token="tok-two", update_secrets="on_create").credentials_connection("present") is False
    assert stored(fake)["password"] == "tok-one"
    assert repo(fake, tmp_path, token="tok-two").credentials_connection("present") is True
    assert stored(fake)["password"] == "tok-two"
