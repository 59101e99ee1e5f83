"""airflow_engine against a real Temporal server on loopback (the `temporal` fixture)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT


PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - qubinode.airflow.airflow_engine:
        engine: {engine}
        temporal_address: {address}
        temporal_namespace: {namespace}
        airflow_config_dir: {config}
        airflow_venv: {venv}
        airflow_user: "{user}"
"""


@pytest.fixture
def host(tmp_path):
    """A config dir, and an 'Airflow venv' whose python is this one with the provider package on its path."""
    config = tmp_path / "etc"
    config.mkdir()
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text("#!/bin/sh\nPYTHONPATH=%s exec %s \"$@\"\n" % (ROOT / "provider" / "src", sys.executable))
    python.chmod(0o755)
    return config, venv


def play(engine, address, config, venv, namespace="airflow"):
    return PLAY.format(engine=engine, address=address, namespace=namespace, config=config, venv=venv, user="")


def test_switch_to_temporal_and_back(temporal, host, run_playbook):
    config, venv = host
    env_file = config / "orchestrator.env"
    check = run_playbook(play("temporal", temporal, config, venv), "--check", "--diff")
    assert check.rc == 0, check.output
    assert check.changed == 1 and not env_file.exists()
    applied = run_playbook(play("temporal", temporal, config, venv))
    assert applied.rc == 0 and applied.changed == 1, applied.output
    text = env_file.read_text()
    assert "AIRFLOW__CORE__EXECUTOR=Temporal:qubinode_airflow.temporal.executor.TemporalExecutor,LocalExecutor" in text
    assert "AIRFLOW__QUBINODE_TEMPORAL__ADDRESS=%s" % temporal in text
    again = run_playbook(play("temporal", temporal, config, venv))
    assert again.rc == 0 and again.changed == 0, again.output
    back = run_playbook(play("airflow", temporal, config, venv))
    assert back.rc == 0 and back.changed == 1
    assert "AIRFLOW__CORE__EXECUTOR=LocalExecutor" in env_file.read_text()
    assert "TEMPORAL" not in env_file.read_text()
    assert run_playbook(play("airflow", temporal, config, venv)).changed == 0


def test_settings_are_what_the_services_and_the_provider_read(temporal, host, run_playbook):
    config, venv = host
    assert run_playbook(play("temporal", temporal, config, venv)).rc == 0
    # Exactly as systemd's EnvironmentFile= and the airflow wrapper read it: as sh assignments.
    out = subprocess.run(["sh", "-c", "set -a; . %s; env" % (config / "orchestrator.env")],
                         capture_output=True, text=True, check=True).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("AIRFLOW__"))
    sys.path.insert(0, str(ROOT / "provider" / "src"))
    from qubinode_airflow.temporal.codec import Settings

    settings = Settings.from_getter(
        lambda name, default: env.get("AIRFLOW__QUBINODE_TEMPORAL__" + name.upper(), default))
    assert (settings.address, settings.namespace, settings.task_queue) == (temporal, "airflow", "airflow-tasks")


@pytest.mark.parametrize("address,namespace,expect", [
    ("TEMPORAL", "nope", "namespace 'nope' does not exist"),
    ("127.0.0.1:1", "airflow", "Temporal at 127.0.0.1:1 is not reachable"),
    ("temporal-without-port", "airflow", "temporal_address 'temporal-without-port': give host:port"),
])
def test_an_unusable_temporal_changes_nothing(temporal, host, run_playbook, address, namespace, expect):
    config, venv = host
    assert run_playbook(play("airflow", temporal, config, venv)).rc == 0
    before = (config / "orchestrator.env").read_text()
    address = temporal if address == "TEMPORAL" else address
    refused = run_playbook(play("temporal", address, config, venv, namespace=namespace))
    assert refused.rc != 0 and expect in refused.output, refused.output
    assert (config / "orchestrator.env").read_text() == before


def test_provider_settings_name_the_bad_option():
    sys.path.insert(0, str(ROOT / "provider" / "src"))
    from qubinode_airflow.temporal.codec import Settings

    values = {"heartbeat_timeout": "soon", "address": "127.0.0.1:7233"}
    with pytest.raises(ValueError, match=r"\[qubinode_temporal\] heartbeat_timeout = 'soon'"):
        Settings.from_getter(values.get)


def test_the_old_module_name_still_works_and_warns(host, run_playbook):
    config, venv = host
    run = run_playbook(play("airflow", "127.0.0.1:1", config, venv).replace(
        "qubinode.airflow.airflow_engine:", "qubinode.airflow.airflow_orchestrator:"))
    assert run.rc == 0 and run.changed == 1, run.output
    assert "AIRFLOW__CORE__EXECUTOR=LocalExecutor" in (config / "orchestrator.env").read_text()
    said = " ".join(run.output.split())  # ansible-core 2.17 and 2.18 wrap warnings
    assert "qubinode.airflow.airflow_orchestrator has been deprecated" in said
    assert "Use qubinode.airflow.airflow_engine" in said


ENTRY_POINT = """
- hosts: localhost
  gather_facts: true
  vars:
    airflow_orchestrator: {engine}
    airflow_temporal_address: 127.0.0.1:1
    airflow_config_dir: {config}
    airflow_venv: {venv}
    airflow_user: ""
    # The secrets role the entry point includes keeps its files in the test's directory, not in the machine's /etc.
    secrets_store_path: {config.parent}/secrets/secrets.yml
    secrets_record_path: {config.parent}/secrets/record.yml
    secrets_tls_dir: {config.parent}/secrets/tls
    secrets_crypto_packages: []
  tasks:
    - ansible.builtin.include_role:
        name: qubinode.airflow.airflow
        tasks_from: engine
"""


def test_the_old_variable_name_is_read_and_warns(host, run_playbook):
    """The airflow role's engine entry point reads airflow_orchestrator when airflow_engine is not set."""
    config, venv = host
    assert run_playbook(play("airflow", "127.0.0.1:1", config, venv)).rc == 0
    # (The first run through the role writes the secrets role's files.)
    assert run_playbook(ENTRY_POINT.format(engine="airflow", config=config, venv=venv)).rc == 0
    same = run_playbook(ENTRY_POINT.format(engine="airflow", config=config, venv=venv))
    assert same.rc == 0 and same.changed == 0, same.output
    assert "airflow_orchestrator is deprecated" in same.output and "airflow_engine=airflow" in same.output
    # The alias's value is the one used: Temporal is asked for, and the unreachable address refused.
    switched = run_playbook(ENTRY_POINT.format(engine="temporal", config=config, venv=venv))
    assert switched.rc != 0 and "Temporal at 127.0.0.1:1 is not reachable" in switched.output, switched.output
    assert "AIRFLOW__CORE__EXECUTOR=LocalExecutor" in (config / "orchestrator.env").read_text()


TLS_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - qubinode.airflow.airflow_engine:
        engine: temporal
        temporal_address: {address}
        airflow_config_dir: {config}
        airflow_venv: {venv}
        airflow_user: ""
{tls}
"""


def _openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture
def tls_frontend(temporal, tmp_path):
    """The Temporal server behind the temporal role's TLS proxy (its template, run by haproxy): mutual TLS on
    localhost, with a CA, a server certificate and a client certificate made here."""
    import jinja2

    d = tmp_path / "tls"
    d.mkdir()
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
             "-subj", "/CN=qa-ca", "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    (d / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2\nextendedKeyUsage=serverAuth,clientAuth\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=" + name,
                 "-keyout", str(d / (name + ".key")), "-out", str(d / (name + ".csr")))
        _openssl("x509", "-req", "-in", str(d / (name + ".csr")), "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"),
                 "-CAcreateserial", "-days", "1", "-extfile", str(d / "ext"), "-out", str(d / (name + ".crt")))
    (d / "frontend.pem").write_text((d / "server.crt").read_text() + (d / "server.key").read_text())
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    template = (ROOT / "roles" / "temporal" / "templates" / "qubinode-temporal-tls.cfg.j2").read_text()
    # The role's template, with the server's loopback port behind the proxy's: here they differ.
    # As the template module renders it (trim_blocks, the trailing newline kept).
    env = jinja2.Environment(trim_blocks=True, keep_trailing_newline=True)
    config = env.from_string(template).render(ansible_managed="test", _temporal_tls_dir=str(d),
                                              _temporal_tls_proxies=[{"name": "frontend", "port": port, "alpn": "h2",
                                                                      "addresses": ["127.0.0.1", "127.0.0.2"]}])
    config = config.replace("server local 127.0.0.1:%d" % port, "server local %s" % temporal)
    (d / "proxy.cfg").write_text(config)
    proxy = subprocess.Popen(["haproxy", "-db", "-f", str(d / "proxy.cfg")], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    try:
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield "localhost:%d" % port, d
    finally:
        proxy.terminate()
        proxy.wait(10)


def test_temporal_over_mutual_tls(tls_frontend, host, run_playbook):
    address, d = tls_frontend
    config, venv = host
    tls = "        temporal_tls_ca: %s\n        temporal_tls_cert: %s\n        temporal_tls_key: %s" % (
        d / "ca.crt", d / "client.crt", d / "client.key")
    applied = run_playbook(TLS_PLAY.format(address=address, config=config, venv=venv, tls=tls))
    assert applied.rc == 0 and applied.changed == 1, applied.output
    text = (config / "orchestrator.env").read_text()
    assert "AIRFLOW__QUBINODE_TEMPORAL__TLS_CA=%s" % (d / "ca.crt") in text
    assert "AIRFLOW__QUBINODE_TEMPORAL__TLS_CERT=%s" % (d / "client.crt") in text
    assert "AIRFLOW__QUBINODE_TEMPORAL__TLS_KEY=%s" % (d / "client.key") in text

    # The frontend requires a certificate: without one, and without TLS, the check refuses and nothing changes.
    before = text
    for tls in ("        temporal_tls_ca: %s" % (d / "ca.crt"), ""):
        refused = run_playbook(TLS_PLAY.format(address=address, config=config, venv=venv, tls=tls))
        assert refused.rc != 0 and "is not reachable from this host" in refused.output, refused.output
        assert (config / "orchestrator.env").read_text() == before


def test_temporal_tls_defaults_to_the_hosts_files(tls_frontend, host, run_playbook):
    """Without temporal_tls_*, a frontend off loopback is reached with the files the airflow role gives the host."""
    address, d = tls_frontend
    config, venv = host
    for src, dest in (("ca.crt", "ca.crt"), ("client.crt", "api.crt"), ("client.key", "api.key")):
        (config / dest).write_bytes((d / src).read_bytes())
    remote = address.replace("localhost", "127.0.0.2")
    applied = run_playbook(TLS_PLAY.format(address=remote, config=config, venv=venv, tls=""))
    assert applied.rc == 0 and applied.changed == 1, applied.output
    text = (config / "orchestrator.env").read_text()
    for name, base in (("CA", "ca.crt"), ("CERT", "api.crt"), ("KEY", "api.key")):
        assert "AIRFLOW__QUBINODE_TEMPORAL__TLS_%s=%s" % (name, config / base) in text
    # On loopback the frontend is plain: the host's files are not used, so this TLS frontend refuses.
    refused = run_playbook(TLS_PLAY.format(address=address, config=config, venv=venv, tls=""))
    assert refused.rc != 0 and "is not reachable from this host" in refused.output, refused.output
    assert (config / "orchestrator.env").read_text() == text


def test_temporal_tls_settings_go_together(host, run_playbook):
    config, venv = host
    refused = run_playbook(TLS_PLAY.format(address="localhost:7233", config=config, venv=venv,
                                           tls="        temporal_tls_cert: /nonexistent.crt"))
    assert refused.rc != 0 and "temporal_tls_cert and temporal_tls_key go together" in refused.output
    sys.path.insert(0, str(ROOT / "provider" / "src"))
    from qubinode_airflow.temporal.codec import Settings

    values = {"address": "temporal:7233", "tls_cert": "/c.crt", "tls_key": "/c.key"}
    with pytest.raises(ValueError, match=r"tls_cert is set without tls_ca"):
        Settings.from_getter(values.get)
