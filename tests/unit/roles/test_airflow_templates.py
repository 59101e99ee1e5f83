"""The airflow role's templates rendered by real Ansible and read back the way
systemd, the shell and Airflow read them."""

from __future__ import annotations

import configparser
import json
import subprocess

import pytest

from conftest import ROOT

ROLE = ROOT / "roles" / "airflow"

RENDER = """
- hosts: localhost
  gather_facts: false
  vars_files:
    - {role}/defaults/main.yml
    - {role}/vars/main.yml
    - {out}/test-vars.yml
  tasks:
    - name: Render
      ansible.builtin.template:
        src: "{role}/templates/{{{{ item }}}}.j2"
        dest: "{out}/{{{{ item }}}}"
        mode: "0600"
      loop: [airflow.cfg, airflow.env, jwt-keys.json]
"""

# Later vars_files win over the role defaults loaded before them.
TEST_VARS = """
secrets_values:
  airflow_db_password: {db_password}
  airflow_fernet_key: {fernet}
  airflow_fernet_key_previous: {previous}
  airflow_jwt_secret: jwt-secret
  airflow_api_secret_key: api-secret
  airflow_webhook_secret: {webhook}
{jwt_previous}airflow_db_host: db.example.com
airflow_config:
  core:
    parallelism: 64
  smtp:
    smtp_host: mail.example.com
"""


def render(run_playbook, tmp_path, db_password="plain", fernet="k" * 43 + "=", webhook="webhook-secret", extra="",
           previous="", jwt_previous=None):
    out = tmp_path / "out"
    out.mkdir(parents=True)
    values = {"db_password": json.dumps(db_password), "fernet": json.dumps(fernet), "webhook": json.dumps(webhook),
              "previous": json.dumps(previous),
              "jwt_previous": "  airflow_jwt_secret_previous: %s\n  airflow_jwt_secret_rotated: 1700000000\n"
                              % json.dumps(jwt_previous) if jwt_previous else ""}
    (out / "test-vars.yml").write_text(TEST_VARS.format(**values) + extra)
    result = run_playbook(RENDER.format(role=ROLE, out=out))
    assert result.rc == 0, result.output
    return out


def shell_env(path, name):
    script = f'set -a; . "{path}"; printf %s "${name}"'
    return subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize(
    "password",
    ["plain", 'quo"te', "dol$lar`tick`", "back\\slash", "sp ace/sl@sh:col%"],
)
def test_env_file_round_trips_awkward_passwords(run_playbook, tmp_path, password):
    out = render(run_playbook, tmp_path, db_password=password)
    from urllib.parse import unquote, urlsplit

    url = shell_env(out / "airflow.env", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    parts = urlsplit(url)
    assert parts.scheme == "postgresql+psycopg2"
    assert parts.hostname == "db.example.com"
    assert unquote(parts.password) == password


def test_cfg_merges_user_settings_and_holds_no_secrets(run_playbook, tmp_path):
    out = render(run_playbook, tmp_path)
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(out / "airflow.cfg")
    assert cfg["core"]["parallelism"] == "64"
    assert cfg["smtp"]["smtp_host"] == "mail.example.com"
    assert cfg["core"]["auth_manager"].endswith("FabAuthManager")
    assert cfg["core"]["load_examples"] == "False"
    text = (out / "airflow.cfg").read_text()
    for secret in ("jwt-secret", "api-secret", "k" * 43):
        assert secret not in text
    for key in ("fernet_key", "sql_alchemy_conn", "secret_key", "jwt_secret"):
        assert key not in text
    assert shell_env(out / "airflow.env", "AIRFLOW__API_AUTH__JWT_SECRET") == "jwt-secret"


@pytest.mark.parametrize("secret", ["plain", 'quo"te$dol`lar\\slash'])
def test_webhook_secret_reaches_airflow_as_a_connection(run_playbook, tmp_path, secret):
    out = render(run_playbook, tmp_path, webhook=secret)
    conn = json.loads(shell_env(out / "airflow.env", "AIRFLOW_CONN_QUBINODE_WEBHOOK"))
    assert conn == {"conn_type": "generic", "password": secret}
    assert secret not in (out / "airflow.cfg").read_text()


def test_a_percent_sign_in_airflow_config_reaches_airflow_as_written(run_playbook, tmp_path):
    extra = """
airflow_config:
  logging:
    log_format: "[%(asctime)s] 100% %(message)s"
"""
    out = render(run_playbook, tmp_path, extra=extra)
    cfg = configparser.ConfigParser()  # interpolates '%', as Airflow's parser does
    cfg.read(out / "airflow.cfg")
    assert cfg["logging"]["log_format"] == "[%(asctime)s] 100% %(message)s"
    assert json.loads(cfg["dag_processor"]["dag_bundle_config_list"])[0]["name"] == "dags-folder"


def test_operators_examples_and_lineage_options(run_playbook, tmp_path):
    extra = """
airflow_ansible_operators: true
airflow_example_dags: true
airflow_openlineage_transport: {type: http, url: "https://lineage.example.com", auth: {type: api_key, apiKey: ol-key-1}}
"""
    out = render(run_playbook, tmp_path, extra=extra)
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(out / "airflow.cfg")
    bundles = json.loads(cfg["dag_processor"]["dag_bundle_config_list"])
    assert [b["name"] for b in bundles] == ["dags-folder", "qubinode-examples"]
    assert bundles[1]["kwargs"]["path"].endswith("/src/qubinode_airflow/example_dags")
    assert cfg["qubinode_ansible"]["collections_path"] == "/opt/qubinode-airflow/collections"
    assert cfg["openlineage"]["disabled"] == "False" and cfg["openlineage"]["namespace"] == "qubinode"
    transport = json.loads(shell_env(out / "airflow.env", "AIRFLOW__OPENLINEAGE__TRANSPORT"))
    assert transport["auth"]["apiKey"] == "ol-key-1"
    assert "ol-key-1" not in (out / "airflow.cfg").read_text()


def test_options_off_by_default(run_playbook, tmp_path):
    out = render(run_playbook, tmp_path)
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(out / "airflow.cfg")
    assert [b["name"] for b in json.loads(cfg["dag_processor"]["dag_bundle_config_list"])] == ["dags-folder"]
    assert not cfg.has_option("qubinode_ansible", "collections_path")
    assert cfg["openlineage"]["disabled"] == "True"
    assert "AIRFLOW__OPENLINEAGE__TRANSPORT" not in (out / "airflow.env").read_text()


@pytest.mark.parametrize("previous", ["", "o" * 43 + "=", "o" * 43 + "=," + "p" * 43 + "="])
def test_during_a_fernet_rotation_the_new_key_comes_first(run_playbook, tmp_path, previous):
    new = "n" * 43 + "="
    out = render(run_playbook, tmp_path, fernet=new, previous=previous)
    assert shell_env(out / "airflow.env", "AIRFLOW__CORE__FERNET_KEY") == ",".join(filter(None, [new, previous]))


def test_tokens_name_the_secret_that_signed_them_by_its_fingerprint(run_playbook, tmp_path):
    import hashlib

    out = render(run_playbook, tmp_path)
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(out / "airflow.cfg")
    expected = hashlib.sha256("qubinode.airflow secret\0airflow_jwt_secret\0jwt-secret".encode()).hexdigest()[:16]
    assert cfg["api_auth"]["jwt_kid"] == expected
    assert "jwt-secret" not in (out / "airflow.cfg").read_text()


def keyring(out):
    import base64

    keys = json.loads((out / "jwt-keys.json").read_text())["keys"]
    return [(key["kid"], base64.urlsafe_b64decode(key["k"] + "=" * (-len(key["k"]) % 4)).decode(), key["alg"], key["kty"])
            for key in keys]


def kid(secret):
    import hashlib

    return hashlib.sha256(f"qubinode.airflow secret\0airflow_jwt_secret\0{secret}".encode()).hexdigest()[:16]


def test_outside_a_rotation_tokens_are_verified_with_the_secret_alone(run_playbook, tmp_path):
    out = render(run_playbook, tmp_path)
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(out / "airflow.cfg")
    assert "trusted_jwks_url" not in cfg["api_auth"]
    assert cfg["qubinode_temporal"]["sealing_keys"] == "/etc/airflow/jwt-keys.json"
    assert keyring(out) == [(kid("jwt-secret"), "jwt-secret", "HS512", "oct")]
    assert shell_env(out / "airflow.env", "AIRFLOW__API_AUTH__JWT_SECRET") == "jwt-secret"


def test_during_a_jwt_window_the_keyring_holds_the_new_secret_first_then_the_old(run_playbook, tmp_path):
    awkward = "old/secret+with=base64-unsafe?chars"
    out = render(run_playbook, tmp_path, jwt_previous=[awkward])
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(out / "airflow.cfg")
    assert cfg["api_auth"]["trusted_jwks_url"] == "/etc/airflow/jwt-keys.json"
    assert cfg["api_auth"]["jwt_kid"] == kid("jwt-secret")
    assert keyring(out) == [(kid("jwt-secret"), "jwt-secret", "HS512", "oct"), (kid(awkward), awkward, "HS512", "oct")]
    assert shell_env(out / "airflow.env", "AIRFLOW__API_AUTH__JWT_SECRET") == "jwt-secret"
    assert "secret" not in (out / "airflow.cfg").read_text().replace("jwt_secret", "").replace("secret_key", "")


def test_a_worker_holds_no_jwt_secret_and_its_config_does_not_change_with_a_rotation(run_playbook, tmp_path):
    before = render(run_playbook, tmp_path / "before", extra="_airflow_is_core: false\n")
    during = render(run_playbook, tmp_path / "during", jwt_previous=["old-secret"], extra="_airflow_is_core: false\n")
    assert (before / "airflow.cfg").read_text() == (during / "airflow.cfg").read_text()
    assert (before / "airflow.env").read_text() == (during / "airflow.env").read_text()
    assert shell_env(during / "airflow.env", "AIRFLOW__API_AUTH__JWT_SECRET") == ""
    assert shell_env(during / "airflow.env", "AIRFLOW__API__SECRET_KEY") == "api-secret"
    assert [key[1] for key in keyring(during)] == ["jwt-secret", "old-secret"]


@pytest.mark.parametrize("engine, parallelism", [("airflow", "8"), ("temporal", "56")])
def test_with_temporal_parallelism_keeps_a_backlog_for_the_workers(run_playbook, tmp_path, engine, parallelism):
    """Four times the workers' total concurrency (6 + the default 4 twice), so no worker waits for the scheduler."""
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[airflow_workers]\nw1 temporal_worker_concurrency=6\nw2\nw3\n")
    result = run_playbook("""
        - hosts: localhost
          gather_facts: false
          vars_files: [{role}/defaults/main.yml]
          tasks:
            - ansible.builtin.copy:
                content: "{{{{ airflow_parallelism | int }}}}"
                dest: {out}/parallelism
                mode: "0600"
        """.format(role=ROLE, out=tmp_path), "-i", str(inventory), "-e", "airflow_engine=" + engine)
    assert result.rc == 0, result.output
    assert (tmp_path / "parallelism").read_text() == parallelism
