"""secrets_guard and secret_fingerprints: a run never replaces, without a word, a secret the stack runs with."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.qubinode.airflow.plugins.filter.secret_fingerprints import secret_fingerprints
from ansible_collections.qubinode.airflow.plugins.filter.secrets_guard import secrets_guard

RUNNING = {"airflow_fernet_key": "k" * 43 + "=", "airflow_jwt_secret": "j" * 64, "airflow_admin_password": "p" * 24}
ORIGINS = {name: "stored" for name in RUNNING}


def record(secrets=None, store_host="core1"):
    return {"store_host": store_host, "fingerprints": secret_fingerprints(secrets or RUNNING)}


def guard(records, secrets, origins=ORIGINS, store_host="core1"):
    return secrets_guard(records, fingerprints=secret_fingerprints(secrets), origins=origins,
                         store_host=store_host, store_path="/etc/qubinode-airflow/secrets.yml")


def test_fingerprints_name_bound_short_and_without_the_value():
    fp = secret_fingerprints({"a": "same", "b": "same"})
    assert fp["a"] != fp["b"]
    assert all(len(v) == 16 and "same" not in v for v in fp.values())
    assert secret_fingerprints({"a": "same"}) == {"a": fp["a"]}


def test_same_secrets_or_new_hosts_pass():
    assert guard({"core1": record(), "db1": record(), "new": None}, RUNNING) == []


def test_a_lost_store_names_every_secret_host_fingerprint_and_fix():
    regenerated = {name: value + "x" for name, value in RUNNING.items()}
    problems = guard({"core1": record(), "db1": record()}, regenerated, {name: "generated" for name in RUNNING})
    assert len(problems) == 3
    fernet = next(p for p in problems if p.startswith("airflow_fernet_key:"))
    assert "core1, db1 runs with the one of fingerprint %s" % secret_fingerprints(RUNNING)["airflow_fernet_key"] in fernet
    assert "Restore /etc/qubinode-airflow/secrets.yml on core1 from a backup, or supply airflow_fernet_key" in fernet
    assert not any(value in " ".join(problems) for value in list(RUNNING.values()) + list(regenerated.values()))


def test_a_moved_store_names_the_host_of_the_records():
    problems = guard({"db1": record(store_host="core-old")}, {**RUNNING, "airflow_jwt_secret": "n" * 64},
                     {**ORIGINS, "airflow_jwt_secret": "generated"}, store_host="core-new")
    assert len(problems) == 1
    assert "the hosts' records name core-old as the store host" in problems[0]
    assert "set secrets_store_host: core-old" in problems[0]


@pytest.mark.parametrize("name", ["airflow_fernet_key", "airflow_jwt_secret"])
def test_a_different_data_key_is_refused(name):
    problems = guard({"core1": record()}, {**RUNNING, name: "other"}, {**ORIGINS, name: "supplied"})
    assert len(problems) == 1 and problems[0].startswith(name + ": the supplied value")


def test_a_password_from_the_vault_may_change():
    assert guard({"core1": record()}, {**RUNNING, "airflow_admin_password": "new"},
                 {**ORIGINS, "airflow_admin_password": "supplied"}) == []


def test_a_broken_record_is_an_error_not_a_pass():
    with pytest.raises(AnsibleFilterError, match="record of core1"):
        guard({"core1": "garbage"}, RUNNING)


def test_a_declared_fernet_rotation_passes_while_hosts_and_database_run_with_the_old_key():
    new = {**RUNNING, "airflow_fernet_key": "n" * 43 + "="}
    old_fp = secret_fingerprints(RUNNING)["airflow_fernet_key"]
    database = {"fingerprints": {"airflow_fernet_key": old_fp}}
    records = {"core1": record(), "the metadata database (airflow on db1)": database}
    assert secrets_guard(records, fingerprints=secret_fingerprints(new), origins={**ORIGINS, "airflow_fernet_key": "rotated"},
                         store_host="core1", store_path="/s", overlap={"airflow_fernet_key": [old_fp]}) == []
    # Without the old key beside the new one the same change is refused, and the message says how to rotate.
    problems = secrets_guard(records, fingerprints=secret_fingerprints(new), origins=ORIGINS, store_host="core1",
                             store_path="/s", overlap={"airflow_fernet_key": []})
    assert len(problems) == 1
    assert "the metadata database (airflow on db1)" in problems[0]
    assert '"new,old"' in problems[0] and "rotate: [airflow_fernet_key]" in problems[0]


def test_the_database_record_alone_stops_a_run_that_lost_store_and_host_records():
    regenerated = {name: value + "x" for name, value in RUNNING.items()}
    database = {"fingerprints": {"airflow_fernet_key": secret_fingerprints(RUNNING)["airflow_fernet_key"]}}
    problems = guard({"core1": None, "the metadata database (airflow on db1)": database}, regenerated,
                     {name: "generated" for name in RUNNING})
    assert len(problems) == 1
    assert problems[0].startswith("airflow_fernet_key: the metadata database (airflow on db1) runs with the one")


def test_fingerprints_of_several_values_of_one_secret_match_the_dict_form():
    keys = ["a" * 43 + "=", "b" * 43 + "="]
    assert secret_fingerprints(keys, name="airflow_fernet_key") == [
        secret_fingerprints({"airflow_fernet_key": key})["airflow_fernet_key"] for key in keys]
    with pytest.raises(AnsibleFilterError, match="expects a list"):
        secret_fingerprints({"a": "b"}, name="a")
