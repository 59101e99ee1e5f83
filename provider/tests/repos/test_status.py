"""Merge-request check statuses, posted to a local server that implements GitHub's statuses API and GitLab's
commit status API as they are documented (tests/status_api_server.py), over HTTPS with a CA made here."""

from __future__ import annotations

import ssl
import subprocess
import threading

import pytest
from status_api_server import make_server

from qubinode_airflow.repos.status import StatusError, checked_target, post_status

TOKEN = "status-token-5b1e"
SHA = "c0ffee" + "0" * 34


def _openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """(base URL, CA file, recorded statuses) of the local status API over HTTPS."""
    d = tmp_path_factory.mktemp("status-tls")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
             "-subj", "/CN=qa-ca", "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    (d / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
             "-keyout", str(d / "host.key"), "-out", str(d / "host.csr"))
    _openssl("x509", "-req", "-in", str(d / "host.csr"), "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"),
             "-CAcreateserial", "-days", "1", "-extfile", str(d / "ext"), "-out", str(d / "host.crt"))
    server = make_server(TOKEN)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(d / "host.crt"), str(d / "host.key"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "https://127.0.0.1:%d" % server.server_address[1], str(d / "ca.crt"), server.statuses
    server.shutdown()


def conn(base, token=TOKEN):
    from airflow.models.connection import Connection

    return Connection(conn_id="qubinode_status_team", conn_type="http", host=base, password=token)


def test_github_gets_each_state_with_the_context_and_the_link(api):
    base, ca, statuses = api
    for state in ("pending", "success", "failure"):
        assert post_status(conn(base), {"kind": "github", "repository": "org/dags"}, SHA, state, "x" * 200,
                           "https://airflow.example.com/dags/d/runs/r", cafile=ca) == 201
    assert [s["state"] for s in statuses[-3:]] == ["pending", "success", "failure"]
    last = statuses[-1]
    assert last["repository"] == "org/dags" and last["sha"] == SHA and last["context"] == "qubinode/dag-validation"
    assert last["description"] == "x" * 140 and last["target_url"] == "https://airflow.example.com/dags/d/runs/r"


def test_gitlab_gets_its_own_state_names_and_an_encoded_project_path(api):
    base, ca, statuses = api
    for state in ("pending", "success", "failure"):
        post_status(conn(base + "/api/v4"), {"kind": "gitlab", "repository": "group/sub/dags"}, SHA, state, "ok",
                    cafile=ca)
    assert [s["state"] for s in statuses[-3:]] == ["running", "success", "failed"]
    assert statuses[-1]["repository"] == "group/sub/dags" and statuses[-1]["context"] == "qubinode/dag-validation"
    post_status(conn(base + "/api/v4"), {"kind": "gitlab", "repository": 42}, SHA, "success", "ok", cafile=ca)
    assert statuses[-1]["repository"] == "42"


def test_a_wrong_token_or_an_untrusted_server_is_a_clear_error(api, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    base, ca, statuses = api
    before = len(statuses)
    with pytest.raises(StatusError, match="github API answered HTTP 401"):
        post_status(conn(base, "wrong"), {"kind": "github", "repository": "org/dags"}, SHA, "success", "", cafile=ca)
    with pytest.raises(StatusError, match="cannot reach the github API .*CERTIFICATE_VERIFY_FAILED"):
        post_status(conn(base), {"kind": "github", "repository": "org/dags"}, SHA, "success", "")
    assert len(statuses) == before


@pytest.mark.parametrize("url", ["http://api.github.example.com", "ftp://127.0.0.1", "https://u:p@api.example.com",
                                 "https://api.example.com/?token=x", ""])
def test_a_token_is_never_sent_in_clear_or_in_a_url(url):
    with pytest.raises(StatusError, match="status API URL"):
        post_status(conn(url), {"kind": "github", "repository": "org/dags"}, SHA, "success", "")


@pytest.mark.parametrize("status", [None, {"kind": "bitbucket", "repository": "a/b"}, {"kind": "github", "repository": "a"},
                                    {"kind": "github", "repository": "../../user"}, {"kind": "gitlab", "repository": "a/../b"},
                                    {"kind": "gitlab", "repository": True}, {"kind": "github", "repository": "a/b?x=1"}])
def test_the_target_of_a_status_is_checked(status):
    with pytest.raises(StatusError, match="status"):
        checked_target(status)


def test_a_commit_that_is_not_a_sha_is_refused_before_any_request(api):
    base, ca, _statuses = api
    with pytest.raises(StatusError, match="not a full SHA"):
        post_status(conn(base), {"kind": "github", "repository": "org/dags"}, "main", "success", "", cafile=ca)


def test_the_processs_ca_bundle_is_trusted_by_default(api, monkeypatch):
    base, ca, statuses = api
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)  # as the airflow role sets it: the system's CAs and the stack's
    assert post_status(conn(base), {"kind": "github", "repository": "org/dags"}, SHA, "success", "") == 201
