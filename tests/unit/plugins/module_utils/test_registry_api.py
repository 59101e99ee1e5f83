"""The API client and the declared-state engine, against a fake Airflow API over real HTTP."""

from __future__ import annotations

import json
import socket

import pytest
from fake_airflow import FakeAirflow

from ansible_collections.qubinode.airflow.plugins.module_utils._api import AirflowAPI, AirflowAPIError
from ansible_collections.qubinode.airflow.plugins.module_utils._registry import (
    ConnectionKind,
    DeclarationError,
    PoolKind,
    Reconciler,
    VariableKind,
)

KINDS = {"connections": (ConnectionKind, "connection_id"), "variables": (VariableKind, "key"),
         "pools": (PoolKind, "name")}
FIELDS = {
    "connections": ["connection_id", "conn_type", "description", "host", "login", "password", "schema", "port",
                    "extra", "secret_extra"],
    "variables": ["key", "value", "secret_value", "description"],
    "pools": ["name", "slots", "description", "include_deferred"],
}


@pytest.fixture
def fake():
    with FakeAirflow() as server:
        yield server


def params(fake, **kw):
    base = dict(api_url=fake.url, api_username="admin", api_password="admin-pass", api_token=None,
                validate_certs=True, ca_path=None, api_timeout=5.0, api_retries=2, state="present",
                exclusive=False, exclusive_keep=[], update_secrets="on_create")
    base.update(kw)
    return base


def apply(fake, kind, check_mode=False, diff=False, **kw):
    cls, _key = KINDS[kind]
    p = params(fake, **kw)
    api = AirflowAPI(p, sleep=lambda s: None)
    return Reconciler(cls(), api, check_mode).run(p, kind, FIELDS[kind], diff)


def conns(n, **over):
    return [dict(dict(connection_id="c%03d" % i, conn_type="postgres", host="db%d" % i, port=5432,
                      login="etl", password="pw-%d" % i, extra={"sslmode": "require"}), **over)
            for i in range(n)]


# -- the client ----------------------------------------------------------------------------------

def test_login_then_bearer_token(fake):
    api = AirflowAPI(params(fake))
    assert api.request("GET", "pools")["total_entries"] == 1
    assert fake.calls("POST") == [("POST", "/auth/token")]


def test_wrong_password_names_the_fix(fake):
    with pytest.raises(AirflowAPIError) as err:
        AirflowAPI(params(fake, api_password="nope")).request("GET", "pools")
    assert err.value.status == 401
    assert "check api_username/api_password" in err.value.msg
    assert "nope" not in err.value.msg


def test_no_credentials_is_a_clear_error(fake):
    with pytest.raises(AirflowAPIError, match="set api_password"):
        AirflowAPI(params(fake, api_password=None)).request("GET", "pools")


def test_expired_token_logs_in_once_more(fake):
    api = AirflowAPI(params(fake))
    api.request("GET", "pools")
    fake.tokens.clear()
    assert api.request("GET", "pools")["total_entries"] == 1
    assert len(fake.calls("POST", "/auth/token")) == 2


@pytest.mark.parametrize("failures, ok", [([503], True), ([502, 500], True), ([503, 503, 503], False)])
def test_5xx_is_retried_with_backoff(fake, failures, ok):
    sleeps = []
    api = AirflowAPI(params(fake, api_token="x"), sleep=sleeps.append)
    fake.tokens.add("x")
    fake.fail_next = list(failures)
    if ok:
        assert api.request("GET", "pools")["total_entries"] == 1
    else:
        with pytest.raises(AirflowAPIError, match=r"failed \(503\)"):
            api.request("GET", "pools")
    assert sleeps == [2, 4][:min(len(failures), 2)]


def test_unreachable_api_says_where_and_what_to_do():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    sleeps = []
    api = AirflowAPI(dict(api_url="http://127.0.0.1:%d" % port, api_password="x", api_retries=2,
                          api_timeout=2), sleep=sleeps.append)
    with pytest.raises(AirflowAPIError) as err:
        api.request("GET", "pools")
    assert "cannot reach the Airflow API at http://127.0.0.1:%d after 3 attempt(s)" % port in err.value.msg
    assert "check api_url" in err.value.msg
    assert sleeps == [2, 4]


def test_bad_url_is_refused_before_any_call():
    with pytest.raises(AirflowAPIError, match="api_url 'airflow:8080' is not an http"):
        AirflowAPI(dict(api_url="airflow:8080"))


def test_bulk_item_errors_fail_even_on_http_200(fake):
    fake.item_error = "c001"
    with pytest.raises(AirflowAPIError) as err:
        apply(fake, "connections", connections=conns(3))
    assert "1 bulk item error(s)" in err.value.msg and "injected failure for c001" in err.value.msg
    assert sorted(err.value.body["create"]) == ["c000", "c002"]


# -- declared state --------------------------------------------------------------------------------

def test_a_list_is_one_bulk_call_and_a_rerun_changes_nothing(fake):
    first = apply(fake, "connections", connections=conns(250))
    assert first["changed"] and len(first["created"]) == 250
    assert len(fake.calls("PATCH")) == 1
    assert len(fake.store["connections"]) == 250
    assert fake.store["connections"]["c007"]["password"] == "pw-7"
    again = apply(fake, "connections", connections=conns(250))
    assert not again["changed"] and again["created"] == again["updated"] == []
    assert len(fake.calls("PATCH")) == 1
    assert len(again["unverifiable"]) == 250  # passwords Airflow does not show back


def test_only_what_differs_is_sent(fake):
    apply(fake, "connections", connections=conns(20))
    wanted = conns(20)
    wanted[3]["host"] = "elsewhere"
    result = apply(fake, "connections", connections=wanted)
    assert result["updated"] == ["c003"]
    (update,) = fake.bodies[-1]["actions"]
    assert update["action"] == "update" and [e["connection_id"] for e in update["entities"]] == ["c003"]
    assert fake.store["connections"]["c003"]["host"] == "elsewhere"


@pytest.mark.parametrize("policy, password_after, changed", [
    ("on_create", "pw-0", False),
    ("always", "rotated", True),
])
def test_passwords_airflow_hides_follow_update_secrets(fake, policy, password_after, changed):
    apply(fake, "connections", connections=conns(1))
    result = apply(fake, "connections", connections=conns(1, password="rotated"), update_secrets=policy)
    assert result["changed"] is changed
    assert fake.store["connections"]["c000"]["password"] == password_after


def test_an_update_under_on_create_keeps_hidden_secrets(fake):
    apply(fake, "connections", connection_id="git", conn_type="git", host="https://git.example.com/r.git",
          password="tok-1", secret_extra={"private_key": "KEY-1"}, extra={"depth": 1})
    result = apply(fake, "connections", connection_id="git", conn_type="git", host="https://git.example.com/r.git",
                   password="tok-2", secret_extra={"private_key": "KEY-2"}, extra={"depth": 2})
    assert result["updated"] == ["git"]
    stored = fake.store["connections"]["git"]
    assert stored["password"] == "tok-1" and stored["extra"] == {"private_key": "KEY-1", "depth": 2}


def test_check_mode_reports_and_changes_nothing(fake):
    result = apply(fake, "pools", check_mode=True, pools=[dict(name="kvm", slots=2)])
    assert result["changed"] and result["created"] == ["kvm"]
    assert fake.calls("PATCH") == [] and "kvm" not in fake.store["pools"]


def test_exclusive_removes_what_is_not_declared_but_keeps_patterns_and_default_pool(fake):
    apply(fake, "connections", connections=conns(4) + [dict(connection_id="qubinode_git_dags", conn_type="git")])
    result = apply(fake, "connections", connections=conns(2), exclusive=True, exclusive_keep=["qubinode_git_*"])
    assert result["deleted"] == ["c002", "c003"]
    assert sorted(fake.store["connections"]) == ["c000", "c001", "qubinode_git_dags"]
    apply(fake, "pools", pools=[dict(name="a", slots=1), dict(name="b", slots=1)])
    result = apply(fake, "pools", pools=[dict(name="a", slots=1)], exclusive=True)
    assert result["deleted"] == ["b"] and sorted(fake.store["pools"]) == ["a", "default_pool"]


def test_exclusive_spares_what_airflow_dag_repo_owns(fake):
    apply(fake, "connections", connections=conns(1) + [dict(connection_id="qubinode_git_dags", conn_type="git")])
    apply(fake, "variables", variables=[dict(key="qubinode_dag_repos", value="{}"), dict(key="old", value="1")])
    assert apply(fake, "connections", connections=[], exclusive=True)["deleted"] == ["c000"]
    assert apply(fake, "variables", variables=[dict(key="env", value="prod")], exclusive=True)["deleted"] == ["old"]
    assert "qubinode_git_dags" in fake.store["connections"]
    assert sorted(fake.store["variables"]) == ["env", "qubinode_dag_repos"]


def test_absent_removes_and_is_then_unchanged(fake):
    apply(fake, "variables", variables=[dict(key="a", value="1"), dict(key="b", value="2")])
    assert apply(fake, "variables", key="a", state="absent")["deleted"] == ["a"]
    assert not apply(fake, "variables", key="a", state="absent")["changed"]
    assert sorted(fake.store["variables"]) == ["b"]


def test_default_pool_is_resized_through_an_update_mask(fake):
    result = apply(fake, "pools", name="default_pool", slots=16)
    assert result["updated"] == ["default_pool"]
    assert fake.bodies[-1]["actions"][0]["update_mask"] == ["include_deferred", "slots"]
    assert fake.store["pools"]["default_pool"]["slots"] == 16
    assert not apply(fake, "pools", name="default_pool", slots=16)["changed"]


@pytest.mark.parametrize("value", ["plain", ["a", "b"], {"k": [1, 2]}, 5, True])
def test_variable_values_round_trip_without_changes(fake, value):
    apply(fake, "variables", key="v", value=value)
    assert not apply(fake, "variables", key="v", value=value)["changed"]


def test_secret_variable_is_masked_in_diff_and_kept_under_on_create(fake):
    first = apply(fake, "variables", diff=True, key="slack_token", secret_value="s3cr3t")
    assert first["diff"]["after"]["slack_token"]["value"] == "********"
    assert "s3cr3t" not in json.dumps(first)
    again = apply(fake, "variables", diff=True, key="slack_token", secret_value="other", description="new")
    assert again["updated"] == ["slack_token"]
    assert fake.bodies[-1]["actions"][0]["update_mask"] == ["description"]
    assert fake.store["variables"]["slack_token"] == {"key": "slack_token", "value": "s3cr3t", "description": "new"}


def test_diff_masks_passwords_and_secret_extras(fake):
    result = apply(fake, "connections", diff=True, connection_id="api", conn_type="http", password="p@ss",
                   secret_extra={"plain_name": "hidden-value"}, extra={"timeout": 5})
    text = json.dumps(result)
    assert "p@ss" not in text and "hidden-value" not in text
    assert result["diff"]["after"]["api"]["extra"] == {"plain_name": "********", "timeout": 5}


@pytest.mark.parametrize("kind, decl, message", [
    ("connections", dict(connections=[dict(connection_id="x")]), "connections[0] (x): conn_type is required"),
    ("connections", dict(connections=[dict(connection_id="bad id", conn_type="http")]),
     "connections[0]: connection_id 'bad id' may hold only"),
    ("connections", dict(connections=[dict(connection_id="x", conn_type="http", extra="[1]")]),
     "connections[0] (x): extra must be a JSON object"),
    ("connections", dict(connections=[dict(connection_id="x", conn_type="http", extra="{oops")]),
     "connections[0] (x): extra is not valid JSON"),
    ("connections", dict(connections=[dict(connection_id="x", conn_type="http")] * 2),
     "connections[1]: connection_id 'x' is declared twice"),
    ("variables", dict(variables=[dict(key="k")]), "variables[0] (k): give value"),
    ("pools", dict(pools=[dict(name="p")]), "pools[0] (p): slots must be"),
    ("pools", dict(pools=[dict(name="default_pool", slots=4, description="x")]), "leave description out"),
    ("pools", dict(pools=[dict(name="p", slots=1)], exclusive=True, state="absent"), "exclusive: true needs"),
])
def test_bad_input_names_the_entry_and_field_and_changes_nothing(fake, kind, decl, message):
    apply(fake, "pools", pools=[dict(name="keep", slots=1)])
    before = json.dumps(fake.store, sort_keys=True)
    with pytest.raises(DeclarationError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        apply(fake, kind, **decl)
    assert json.dumps(fake.store, sort_keys=True) == before
    assert len(fake.calls("PATCH")) == 1


def test_default_pool_cannot_be_removed(fake):
    with pytest.raises(DeclarationError, match="built into Airflow"):
        apply(fake, "pools", name="default_pool", state="absent")


def test_pagination_reads_every_page(fake):
    apply(fake, "variables", variables=[dict(key="v%03d" % i, value=str(i)) for i in range(230)])
    fake.requests.clear()
    result = apply(fake, "variables", variables=[dict(key="v%03d" % i, value=str(i)) for i in range(230)])
    assert not result["changed"]
    assert len(fake.calls("GET", "/api/v2/variables")) == 3  # 100 + 100 + 30


def test_without_api_url_the_host_api_server_is_used_over_https_with_the_stack_ca(tmp_path, monkeypatch):
    from ansible_collections.qubinode.airflow.plugins.module_utils import _api

    ca = tmp_path / "ca.crt"
    monkeypatch.setattr(_api, "LOCAL_CA", str(ca))
    plain = AirflowAPI(dict(api_password="x"))
    assert (plain.base, plain.ca_path) == ("http://127.0.0.1:8080", None)
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    tls = AirflowAPI(dict(api_password="x"))
    assert (tls.base, tls.ca_path) == ("https://127.0.0.1:8080", str(ca))
    # Given explicitly, the URL and the CA are the caller's.
    given = AirflowAPI(dict(api_url="https://airflow.example.com:8443", ca_path="/site/ca.pem", api_password="x"))
    assert (given.base, given.ca_path) == ("https://airflow.example.com:8443", "/site/ca.pem")
