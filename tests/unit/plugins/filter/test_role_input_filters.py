"""The role-input filters: what a hostile or careless variable would smuggle into pg_hba.conf or
airflow.cfg is refused with the variable, the entry and the field named."""

from __future__ import annotations

import configparser

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.qubinode.airflow.plugins.filter.airflow_cfg import airflow_cfg
from ansible_collections.qubinode.airflow.plugins.filter.pg_hba_entries import pg_hba_entries


def hba(**kw):
    entry = dict(type="host", database="airflow", user="airflow", address="10.0.0.0/8", method="scram-sha-256")
    entry.update(kw)
    return [entry]


@pytest.mark.parametrize("entry, says", [
    (dict(address="0.0.0.0/0 trust #"), "address '0.0.0.0/0 trust #'"),
    (dict(address="10.0.0.0/8\nhost all all 0.0.0.0/0 trust"), "address"),
    (dict(address="10.0.0.1/8"), "address"),  # host bits set: not a network
    (dict(address="10.0.0.1"), "address"),  # no mask
    (dict(address=""), "address"),
    (dict(method="ident"), "method 'ident' is not allowed for host entries"),
    (dict(method="trust"), "method 'trust'"),
    (dict(method="md5"), "method 'md5'"),
    (dict(method="password"), "method 'password'"),
    (dict(type="local", address=None, method="trust"), "method 'trust' is not allowed for local"),
    (dict(type="local", address="10.0.0.0/8", method="peer"), "a local entry takes no address"),
    (dict(database="all trust"), "database 'all trust'"),
    (dict(user="@/etc/passwd"), "user '@/etc/passwd'"),
    (dict(user='"x" # y'), "user"),
    (dict(type="hostgssenc"), "type 'hostgssenc'"),
])
def test_smuggled_pg_hba_entries_are_refused(entry, says):
    with pytest.raises(AnsibleFilterError, match=r"postgresql_hba_extra\[0\]\.") as e:
        pg_hba_entries(hba(**entry))
    assert says in str(e.value)


@pytest.mark.parametrize("entry", [
    dict(), dict(address="192.0.2.7/32"), dict(address="2001:db8::/32"), dict(address="db.example.com"),
    dict(address=".example.com"), dict(address="samenet"), dict(type="hostssl", method="cert"),
    dict(type="local", address=None, method="peer"), dict(database="airflow,temporal", user="+admins"),
])
def test_ordinary_pg_hba_entries_pass(entry):
    assert pg_hba_entries(hba(**entry)) == hba(**entry)


def read_cfg(text):
    parser = configparser.ConfigParser()  # interpolates '%' as Airflow's parser does
    parser.read_string(text)
    return parser


def test_percent_in_an_airflow_config_value_reaches_airflow_as_written():
    text = airflow_cfg({"logging": {"log_format": "[%(asctime)s] 100% %(message)s"}, "core": {"parallelism": 64,
                        "load_examples": False, "unset": None, "empty": ""}})
    cfg = read_cfg(text)
    assert cfg.get("logging", "log_format") == "[%(asctime)s] 100% %(message)s"
    assert cfg.get("core", "parallelism") == "64" and cfg.get("core", "load_examples") == "False"
    assert not cfg.has_option("core", "unset") and not cfg.has_option("core", "empty")


@pytest.mark.parametrize("cfg, says", [
    ({"core": {"executor": "LocalExecutor\n[database]\nsql_alchemy_conn = sqlite://"}}, "airflow_config.core.executor"),
    ({"core": {"dags_folder": "/x\r/y"}}, "airflow_config.core.dags_folder holds a line break"),
    ({"core]\n[x": {"a": 1}}, "section"),
    ({"core": {"a = b\nc": 1}}, "airflow_config.core: key"),
    ({"core": {"a": {"nested": 1}}}, "airflow_config.core.a: give a string"),
    ({"core": "x"}, "airflow_config.core must be a mapping"),
])
def test_a_value_that_would_inject_a_key_is_refused(cfg, says):
    with pytest.raises(AnsibleFilterError, match=says.replace(".", r"\.").replace("[", r"\[")):
        airflow_cfg(cfg)
