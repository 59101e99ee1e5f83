"""Task logs over HTTPS: the log server of qubinode_airflow.logs.server serves Airflow's log application with a
certificate, and the api-server's handler (qubinode_airflow.logs.handler) reads a worker's log through it,
checking the certificate against the CA bundle. Real processes, real TLS, Airflow's own tokens."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import types

import pytest

from conftest import HOME


def _openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _ca(d, name):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
             "-subj", "/CN=" + name, "-keyout", str(d / (name + ".key")), "-out", str(d / (name + ".crt")))


@pytest.fixture
def log_server(tmp_path, monkeypatch):
    """The log server on a free port of localhost, with a certificate of a CA made here; (port, CA, other CA)."""
    d = tmp_path / "tls"
    d.mkdir()
    _ca(d, "ca")
    _ca(d, "other-ca")
    (d / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=worker",
             "-keyout", str(d / "host.key"), "-out", str(d / "host.csr"))
    _openssl("x509", "-req", "-in", str(d / "host.csr"), "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"),
             "-CAcreateserial", "-days", "1", "-extfile", str(d / "ext"), "-out", str(d / "host.crt"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The server and this process sign and check the log tokens with the same [api] secret_key.
    monkeypatch.setenv("AIRFLOW__API__SECRET_KEY", "qa-log-secret-" + "k" * 32)
    monkeypatch.setenv("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", str(port))
    server = subprocess.Popen([sys.executable, "-m", "qubinode_airflow.logs.server", "--cert", str(d / "host.crt"),
                               "--key", str(d / "host.key")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        assert server.poll() is None, server.stdout.read().decode()
        yield port, d / "ca.crt", d / "other-ca.crt"
    finally:
        server.terminate()
        server.wait(10)


def _read(monkeypatch, bundle, rel_path):
    """What the api-server's handler reads of a task's log served by a worker on localhost."""
    from qubinode_airflow.logs.handler import HTTPSFileTaskHandler

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    handler = HTTPSFileTaskHandler(base_log_folder=str(HOME / "logs-of-the-api-server"))
    ti = types.SimpleNamespace(hostname="localhost", triggerer_job=None, task=None)
    sources, streams = handler._read_from_logs_server(ti, rel_path)
    return sources, ["".join(line for line in stream) for stream in streams]


def test_the_handler_reads_a_workers_log_over_https(log_server, monkeypatch):
    port, ca, other_ca = log_server
    rel_path = "dag_id=qa/run_id=r1/task_id=t/attempt=1.log"
    log = HOME / "logs" / rel_path
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text('{"event": "qa-line-served-over-tls"}\n')

    sources, contents = _read(monkeypatch, ca, rel_path)
    assert sources == ["https://localhost:%d/log/%s" % (port, rel_path)], sources
    assert "qa-line-served-over-tls" in contents[0]

    # A CA bundle without the stack's CA: the handler refuses the server, and says so instead of the log.
    sources, contents = _read(monkeypatch, other_ca, rel_path)
    assert contents == [] and "CERTIFICATE_VERIFY_FAILED" in sources[0], sources


def test_plain_http_gets_no_log(log_server):
    port = log_server[0]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /log/dag_id=qa/run_id=r1/task_id=t/attempt=1.log HTTP/1.1\r\nHost: localhost\r\n\r\n")
        s.settimeout(10)
        try:
            answer = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            answer = b""
    assert b"qa-line" not in answer and b"HTTP/1.1 200" not in answer, answer


def test_the_logging_configuration_uses_the_https_handler():
    env = dict(os.environ, AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS="qubinode_airflow.logs.config.LOGGING_CONFIG")
    out = subprocess.run(
        [sys.executable, "-c", "import logging, airflow.logging_config as c; c.configure_logging(); "
                               "print([type(h).__name__ for h in logging.getLogger('airflow.task').handlers])"],
        env=env, check=True, capture_output=True, text=True).stdout
    assert "HTTPSFileTaskHandler" in out, out


def test_the_server_refuses_to_start_with_a_key_that_is_not_the_certificates(tmp_path):
    _ca(tmp_path, "a")
    _ca(tmp_path, "b")
    run = subprocess.run([sys.executable, "-m", "qubinode_airflow.logs.server", "--cert", str(tmp_path / "a.crt"),
                          "--key", str(tmp_path / "b.key"), "--port", "1"], capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode != 0 and "SSLError" in run.stderr, run.stderr[-2000:]
