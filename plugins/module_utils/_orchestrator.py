# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE: this module is internal to the qubinode.airflow collection. Its API may change
# without notice; do not import it from other collections.
"""Which engine runs Airflow's task instances on a host: the settings file and its readers.

The setting is a small environment file, /etc/airflow/orchestrator.env, read by every Airflow unit,
the Temporal worker and the airflow CLI wrapper. Environment variables win over airflow.cfg, so the
airflow role keeps owning airflow.cfg and a re-converge never undoes a switch.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shlex

from ansible_collections.qubinode.airflow.plugins.module_utils._host import airflow_python, run

ENV_FILE = "orchestrator.env"
TEMPORAL_EXECUTOR = "Temporal:qubinode_airflow.temporal.executor.TemporalExecutor"
HEADER = ("# Managed by qubinode.airflow.airflow_engine: the engine that runs task instances.\n"
          "# Read by every Airflow unit, the Temporal worker and /usr/local/bin/airflow. Do not edit.\n")


class OrchestratorError(Exception):
    pass


def desired_settings(engine, address, namespace, task_queue, heartbeat_timeout=None, max_attempts=None,
                     tls=None):
    """The environment that selects `engine`. LocalExecutor stays available next to Temporal,
    so a task can still choose it with executor="LocalExecutor"."""
    if engine == "airflow":
        return {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}
    out = {
        "AIRFLOW__CORE__EXECUTOR": TEMPORAL_EXECUTOR + ",LocalExecutor",
        "AIRFLOW__QUBINODE_TEMPORAL__ADDRESS": address,
        "AIRFLOW__QUBINODE_TEMPORAL__NAMESPACE": namespace,
        "AIRFLOW__QUBINODE_TEMPORAL__TASK_QUEUE": task_queue,
    }
    if heartbeat_timeout:
        out["AIRFLOW__QUBINODE_TEMPORAL__HEARTBEAT_TIMEOUT"] = str(heartbeat_timeout)
    if max_attempts:
        out["AIRFLOW__QUBINODE_TEMPORAL__MAX_ATTEMPTS"] = str(max_attempts)
    # {ca, cert, key}: paths of the PEM files of a TLS frontend that requires a client certificate.
    for name, path in sorted((tls or {}).items()):
        if path:
            out["AIRFLOW__QUBINODE_TEMPORAL__TLS_" + name.upper()] = path
    return out


LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
HOST_TLS_FILES = (("ca", "ca.crt"), ("cert", "api.crt"), ("key", "api.key"))


def host_tls(address, config_dir):
    """The TLS files the airflow role gives a host ({ca, cert, key} in the configuration directory), when
    `address` is not on loopback and the host has all three; else None (plain gRPC)."""
    if address.rsplit(":", 1)[0] in LOOPBACK:
        return None
    files = dict((name, os.path.join(config_dir, base)) for name, base in HOST_TLS_FILES)
    return files if all(os.path.isfile(path) for path in files.values()) else None


def engine_of(settings):
    if not settings:
        return "airflow"
    return "temporal" if settings.get("AIRFLOW__CORE__EXECUTOR", "").startswith("Temporal:") else "airflow"


def render(settings):
    return HEADER + "".join("%s=%s\n" % (k, shlex.quote(v)) for k, v in sorted(settings.items()))


def read(path):
    """The settings in the file, or None when there is none (the role's airflow.cfg applies)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    out = {}
    for line in lines:
        if not line.strip() or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        parts = shlex.split(value) or [""]
        out[key.strip()] = parts[0]
    return out


def write(path, settings):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(render(settings))
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


def check_temporal(module, venv, address, namespace, run_as=None, config_dir=None, tls=None):
    """Ask the Temporal frontend from this host, with the Temporal SDK of Airflow's Python (the
    virtualenv's, or the services' image for the podman runtime)."""
    argv, env = airflow_python(venv, run_as, config_dir)
    if argv[0] != "podman" and not os.path.exists(argv[-1]):
        raise OrchestratorError("no Airflow virtualenv at %s: run the airflow (or temporal_worker) role on this "
                                "host first, or set airflow_venv" % venv)
    tls = tls or {}
    cmd = argv + ["-m", "qubinode_airflow.temporal.check", address, namespace]
    if tls.get("ca"):
        cmd += [tls["ca"]] + ([tls["cert"], tls["key"]] if tls.get("cert") else [])
    rc, out, err = run(cmd, environ_update=env)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise OrchestratorError("the Temporal check could not run on this host (rc %s): %s; is the qubinode-airflow "
                                "package installed in %s?" % (rc, (err or out).strip()[-600:], venv))
    answer = json.loads(lines[-1])
    if not answer.get("ok"):
        raise OrchestratorError(answer.get("message"))
    return answer.get("message")
