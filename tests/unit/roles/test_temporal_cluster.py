"""The temporal role's cluster mode: the server configuration it renders for several hosts, checked
against what temporal-server reads, and the inputs it refuses before touching a host.

temporal-server itself cannot be fetched on the test machines, so the rendered files are checked
against the server's configuration structure (the YAML keys of its config package) and the rules
its loader enforces. The database side of cluster mode runs for real in the molecule scenario
`distributed`.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
import yaml

from conftest import ROOT

PASSWORD = "Db-Pass-7f3a9c0e"
HOSTS = {"t1": "10.88.0.11", "t2": "10.88.0.12", "t3": "10.88.0.13"}

# YAML keys temporal-server's configuration structure knows, for the parts the role renders
# ("*" = any key: a map whose keys the user names).
SQL_KEYS = {
    "user", "password", "pluginName", "databaseName", "connectAddr", "connectProtocol",
    "connectAttributes", "maxConns", "maxIdleConns", "maxConnLifetime", "taskScanPartitions", "tls",
}
TLS_SERVER_KEYS = {"certFile", "keyFile", "clientCaFiles", "certData", "keyData", "clientCaData", "requireClientAuth"}
TLS_CLIENT_KEYS = {"serverName", "disableHostVerification", "rootCaFiles", "rootCaData", "forceTLS"}
RPC_KEYS = {"grpcPort", "membershipPort", "bindOnLocalHost", "bindOnIP", "httpPort"}
SCHEMA = {
    "log": {"stdout": None, "level": None, "outputFile": None, "format": None, "development": None},
    "persistence": {
        "defaultStore": None, "visibilityStore": None, "secondaryVisibilityStore": None,
        "numHistoryShards": None,
        "datastores": {"*": {"sql": dict.fromkeys(SQL_KEYS), "faultInjection": None, "customDatastore": None}},
    },
    "global": {
        "membership": {"maxJoinDuration": None, "broadcastAddress": None},
        "pprof": {"port": None},
        "tls": {
            "internode": {"server": dict.fromkeys(TLS_SERVER_KEYS), "client": dict.fromkeys(TLS_CLIENT_KEYS)},
            "frontend": {"server": dict.fromkeys(TLS_SERVER_KEYS), "client": dict.fromkeys(TLS_CLIENT_KEYS)},
            "systemWorker": {"certFile": None, "keyFile": None, "certData": None, "keyData": None,
                             "client": dict.fromkeys(TLS_CLIENT_KEYS)},
        },
        "metrics": {"prometheus": {"timerType": None, "listenAddress": None, "framework": None}},
        "authorization": None,
    },
    "services": {"*": {"rpc": dict.fromkeys(RPC_KEYS)}},
    "clusterMetadata": {
        "enableGlobalNamespace": None, "failoverVersionIncrement": None, "masterClusterName": None,
        "currentClusterName": None,
        "clusterInformation": {"*": {"enabled": None, "initialFailoverVersion": None, "rpcName": None,
                                     "rpcAddress": None, "httpAddress": None}},
    },
    "dcRedirectionPolicy": {"policy": None, "toDC": None},
    "archival": {"history": {"state": None, "enableRead": None, "provider": None},
                 "visibility": {"state": None, "enableRead": None, "provider": None}},
    "publicClient": {"hostPort": None},
    "dynamicConfigClient": {"filepath": None, "pollInterval": None},
    "namespaceDefaults": {"archival": {"history": {"state": None, "URI": None},
                                       "visibility": {"state": None, "URI": None}}},
}
INT_FIELDS = {"numHistoryShards", "grpcPort", "membershipPort", "httpPort", "maxConns", "maxIdleConns",
              "failoverVersionIncrement", "initialFailoverVersion"}


def unknown_keys(doc, schema, path=""):
    """Keys of doc that the server's configuration structure does not have."""
    found = []
    for key, value in doc.items():
        sub = schema.get(key, schema.get("*", KeyError))
        if sub is KeyError:
            found.append(f"{path}{key}")
        elif isinstance(sub, dict) and isinstance(value, dict):
            found += unknown_keys(value, sub, f"{path}{key}.")
    return found


def wrong_types(doc, path=""):
    found = []
    for key, value in doc.items():
        if isinstance(value, dict):
            found += wrong_types(value, f"{path}{key}.")
        elif key in INT_FIELDS and (not isinstance(value, int) or isinstance(value, bool)):
            found.append(f"{path}{key}={value!r}")
    return found


PLAY = """
- hosts: airflow_temporal
  gather_facts: false
  vars:
    secrets_values: {{temporal_db_password: "%s"}}
    ansible_facts: {{architecture: x86_64}}
  tasks:
    - name: Check and render the cluster configuration
      ansible.builtin.include_role:
        name: qubinode.airflow.temporal
        tasks_from: cluster_config.yml
        public: true
    - name: Keep what the role would write
      ansible.builtin.copy:
        content: "{{{{ _temporal_cluster_config | to_nice_yaml(indent=2, width=1000) }}}}"
        dest: "{out}/{{{{ inventory_hostname }}}}.yaml"
        mode: "0600"
""" % PASSWORD


def run(tmp_path: pathlib.Path, *extra: str, verbose: bool = False) -> subprocess.CompletedProcess:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {
        "airflow_db": {"hosts": {"db1": {}}},
        "airflow_core": {"hosts": {"core1": {}}},
        "airflow_temporal": {"hosts": {
            name: {"ansible_host": address, "ansible_connection": "local",
                   "ansible_python_interpreter": sys.executable}
            for name, address in HOSTS.items()}},
    }}}))
    play = tmp_path / "play.yml"
    play.write_text(textwrap.dedent(PLAY.format(out=tmp_path)))
    env = dict(os.environ)
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".cache" / "collections"))
    cmd = ["ansible-playbook", "-i", str(inventory), str(play), "-e", "temporal_mode=cluster", *extra]
    if verbose:
        cmd.append("-vvv")
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)


def per_host_vars(tmp_path):
    """The broadcast address of each host, as a user sets it when facts are not gathered."""
    path = tmp_path / "host_vars"
    path.mkdir(exist_ok=True)
    for name, address in HOSTS.items():
        (path / f"{name}.yml").write_text(f"temporal_broadcast_address: {address}\n")
    return path


@pytest.fixture
def rendered(tmp_path):
    per_host_vars(tmp_path)
    result = run(tmp_path, verbose=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert PASSWORD not in result.stdout + result.stderr
    return {name: yaml.safe_load((tmp_path / f"{name}.yaml").read_text()) for name in HOSTS}


def test_every_key_is_one_temporal_server_reads(rendered):
    for name, config in rendered.items():
        assert unknown_keys(config, SCHEMA) == [], name
        assert wrong_types(config) == [], name


def test_rules_the_server_loader_enforces(rendered):
    for config in rendered.values():
        persistence = config["persistence"]
        assert persistence["defaultStore"] in persistence["datastores"]
        assert persistence["visibilityStore"] in persistence["datastores"]
        assert persistence["numHistoryShards"] == 512
        for store in persistence["datastores"].values():
            for field in ("pluginName", "databaseName", "connectAddr", "connectProtocol"):
                assert store["sql"][field], field
            assert store["sql"]["pluginName"] == "postgres12"
        meta = config["clusterMetadata"]
        assert meta["currentClusterName"] in meta["clusterInformation"]
        assert meta["masterClusterName"] == meta["currentClusterName"]
        assert set(config["services"]) == {"frontend", "history", "matching", "worker"}
        ports = [rpc[k] for rpc in (s["rpc"] for s in config["services"].values())
                 for k in ("grpcPort", "membershipPort", "httpPort") if k in rpc]
        assert len(ports) == len(set(ports))
        for service in config["services"].values():
            assert not (service["rpc"].get("bindOnLocalHost") and service["rpc"].get("bindOnIP"))


def test_hosts_share_the_cluster_and_differ_only_in_their_own_address(rendered):
    configs = list(rendered.values())
    for key in ("persistence", "clusterMetadata", "services", "log", "archival", "dynamicConfigClient"):
        assert all(c[key] == configs[0][key] for c in configs), key
    assert [c["global"]["membership"]["broadcastAddress"] for c in rendered.values()] == list(HOSTS.values())
    for name, config in rendered.items():
        assert config["publicClient"]["hostPort"] == f"{HOSTS[name]}:7233"
        assert config["services"]["frontend"]["rpc"]["bindOnIP"] == "0.0.0.0"
    # Every host advertises the same frontend address: the first host's, unless a load balancer is set.
    info = configs[0]["clusterMetadata"]["clusterInformation"]["active"]
    assert info["rpcAddress"] == "10.88.0.11:7233"


def test_backbone_database_and_stack_secret(rendered):
    store = rendered["t2"]["persistence"]["datastores"]
    assert store["default"]["sql"]["databaseName"] == "temporal"
    assert store["visibility"]["sql"]["databaseName"] == "temporal_visibility"
    assert store["default"]["sql"]["user"] == "temporal"
    assert store["default"]["sql"]["password"] == PASSWORD


def test_overrides_merge_into_the_rendered_configuration(tmp_path):
    per_host_vars(tmp_path)
    overrides = ('{"temporal_config_overrides": {"global": {"authorization": {"permissionsClaimName": "permissions"}},'
                 ' "persistence": {"datastores": {"default": {"sql": {"maxConns": 50}}}}}}')
    result = run(tmp_path, "-e", overrides, "-e", "temporal_frontend_address=temporal.example.internal:7233")
    assert result.returncode == 0, result.stdout[-3000:]
    config = yaml.safe_load((tmp_path / "t1.yaml").read_text())
    assert config["global"]["authorization"] == {"permissionsClaimName": "permissions"}
    assert config["persistence"]["datastores"]["default"]["sql"]["maxConns"] == 50
    assert config["persistence"]["datastores"]["default"]["sql"]["databaseName"] == "temporal"
    assert config["global"]["membership"]["broadcastAddress"] == "10.88.0.11"
    assert config["clusterMetadata"]["clusterInformation"]["active"]["rpcAddress"] == "temporal.example.internal:7233"


@pytest.mark.parametrize("extra, names", [
    (["-e", "temporal_bind_address=127.0.0.1"], ["temporal_bind_address", "several hosts"]),
    (["-e", "temporal_history_shards=0"], ["temporal_history_shards"]),
    (["-e", "temporal_broadcast_address=temporal-1.example"], ["temporal_broadcast_address", "IPv4"]),
    (["-e", "temporal_history_port=7233"], ["ports", "temporal_history_port"]),
    (["-e", "temporal_server_archive_checksum=deadbeef"], ["temporal_server_archive_checksum"]),
    (["-e", '{"temporal_config_overrides": {"persistence": {"defaultStore": "main"}}}'],
     ["persistence.defaultStore", "temporal_config_overrides"]),
    (["-e", '{"temporal_config_overrides": {"persistence": {"datastores": {"visibility": {"sql": {"connectAddr": ""}}}}}}'],
     ["visibility.sql.connectAddr", "temporal_config_overrides"]),
    (["-e", '{"temporal_config_overrides": {"clusterMetadata": {"currentClusterName": "east"}}}'],
     ["currentClusterName"]),
])
def test_bad_input_is_refused_naming_the_field(tmp_path, extra, names):
    per_host_vars(tmp_path)
    result = run(tmp_path, *extra)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for name in names:
        assert name in output, (name, output[-2000:])
    assert not list(tmp_path.glob("t*.yaml")), "nothing is rendered when the input is refused"
    assert PASSWORD not in output


@pytest.mark.parametrize("extra, port, warns", [
    (["-e", "temporal_worker_service_port=7298"], 7298, False),
    (["-e", "temporal_worker_port=7299"], 7299, True),  # the deprecated name, read with a warning
])
def test_the_internal_worker_service_port_and_its_old_name(tmp_path, extra, port, warns):
    per_host_vars(tmp_path)
    result = run(tmp_path, *extra)
    assert result.returncode == 0, result.stdout[-3000:]
    config = yaml.safe_load((tmp_path / "t1.yaml").read_text())
    assert config["services"]["worker"]["rpc"]["grpcPort"] == port
    assert ("temporal_worker_port is deprecated" in result.stdout) is warns


def test_cluster_tls_is_mutual_and_checks_the_shared_name(tmp_path):
    per_host_vars(tmp_path)
    result = run(tmp_path, "-e", "temporal_tls_ca=/pki/ca.crt", "-e", "temporal_tls_cert=/pki/host.crt",
                 "-e", "temporal_tls_key=/pki/host.key")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in HOSTS:
        config = yaml.safe_load((tmp_path / f"{name}.yaml").read_text())
        assert unknown_keys(config, SCHEMA) == [], name
        tls = config["global"]["tls"]
        for group in ("internode", "frontend"):
            server, client = tls[group]["server"], tls[group]["client"]
            assert server["requireClientAuth"] is True
            assert server["certFile"] == "/etc/temporal/tls/server.crt"
            assert server["keyFile"] == "/etc/temporal/tls/server.key"
            assert server["clientCaFiles"] == ["/etc/temporal/tls/ca.crt"]
            assert client == {"serverName": "temporal-internode.qubinode-airflow.invalid",
                              "rootCaFiles": ["/etc/temporal/tls/ca.crt"]}
        assert tls["systemWorker"]["certFile"] == "/etc/temporal/tls/server.crt"
        assert tls["systemWorker"]["client"]["serverName"] == "temporal-internode.qubinode-airflow.invalid"


def test_the_shared_name_is_the_one_the_secrets_role_certifies():
    secrets = yaml.safe_load((ROOT / "roles" / "secrets" / "vars" / "main.yml").read_text())
    temporal = yaml.safe_load((ROOT / "roles" / "temporal" / "vars" / "main.yml").read_text())
    assert secrets["_secrets_temporal_internode_name"] == temporal["_temporal_internode_name"]
