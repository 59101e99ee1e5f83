#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: airflow_engine
short_description: Choose the engine that runs Airflow's task instances on this host - Airflow or Temporal
version_added: 0.1.0
description:
  - V(airflow) runs task instances with Airflow's LocalExecutor. V(temporal) runs every task attempt as a
    durable Temporal workflow, executed by the workers of the C(temporal_worker) role
    (C(qubinode_airflow.temporal.executor.TemporalExecutor) from the collection's provider package);
    LocalExecutor stays available to tasks that ask for it with C(executor="LocalExecutor").
  - Before switching to Temporal it checks, from this host, that the Temporal frontend answers and the
    namespace exists; if not, it fails and changes nothing.
  - The setting is the file C(orchestrator.env) in O(airflow_config_dir), read by every Airflow service, the
    Temporal worker and the C(airflow) command. Services that read it are restarted when it changes.
  - Run it on every Airflow host and worker (the C(airflow) and C(temporal_worker) roles do, from
    C(airflow_engine) and C(airflow_temporal_*)); every host that parses DAGs needs the same setting.
author: qubinode.airflow contributors (@qubinode)
attributes:
  check_mode:
    description: Reports whether the setting would change and which services would restart; writes nothing.
    support: full
  diff_mode:
    description: Shows the settings before and after (they hold no secrets).
    support: full
options:
  engine:
    description: The engine that runs task instances.
    type: str
    required: true
    choices: [airflow, temporal]
  temporal_address:
    description: C(host:port) of the Temporal frontend, as this host reaches it.
    type: str
    default: 127.0.0.1:7233
  temporal_namespace:
    description: Temporal namespace of the task attempts.
    type: str
    default: airflow
  temporal_task_queue:
    description: Task queue the Temporal workers poll.
    type: str
    default: airflow-tasks
  temporal_tls_ca:
    description:
      - CA certificate (PEM file on the host) the frontend's certificate is checked against, for the host name of
        O(temporal_address).
      - Unset with O(temporal_tls_cert) and O(temporal_tls_key), and O(temporal_address) not on loopback, the
        module uses the files the airflow role gives the host, C(ca.crt), C(api.crt) and C(api.key) in
        O(airflow_config_dir), when the host has them; else this host talks plain gRPC (a frontend on loopback).
    type: path
  temporal_tls_cert:
    description: Client certificate (PEM file on the host, readable by O(airflow_user)) presented to the frontend.
    type: path
  temporal_tls_key:
    description: Key of O(temporal_tls_cert) (PEM file on the host, readable by O(airflow_user)).
    type: path
  temporal_heartbeat_timeout:
    description: Seconds without a worker heartbeat before Temporal gives an attempt to another worker.
    type: int
  temporal_max_attempts:
    description: How many workers may try one task attempt when workers are lost.
    type: int
  check_temporal:
    description: Check that Temporal answers and the namespace exists before using it.
    type: bool
    default: true
  restart:
    description: Restart the services of this host that read the setting when it changes.
    type: bool
    default: true
  airflow_config_dir:
    description: Directory of airflow.cfg and orchestrator.env.
    type: path
    default: /etc/airflow
  airflow_venv:
    description: The Airflow virtualenv on this host (the Temporal check runs with it).
    type: path
    default: /opt/qubinode-airflow/venv
  airflow_user:
    description: User the Temporal check runs as.
    type: str
    default: airflow
notes:
  - Attempts already running keep running where they are; only new attempts follow the new setting.
"""

EXAMPLES = r"""
- name: Run task instances through Temporal on every Airflow host and worker
  hosts: airflow_core:airflow_workers
  become: true
  tasks:
    - name: Select Temporal
      qubinode.airflow.airflow_engine:
        engine: temporal
        temporal_address: temporal1.example.com:7233

- name: Back to Airflow's own executor
  hosts: airflow_core:airflow_workers
  become: true
  tasks:
    - name: Select Airflow's LocalExecutor
      qubinode.airflow.airflow_engine:
        engine: airflow
"""

RETURN = r"""
engine:
  description: The engine now selected.
  returned: always
  type: str
previous_engine:
  description: The engine selected before this run.
  returned: always
  type: str
settings:
  description: The environment the services get (AIRFLOW__CORE__EXECUTOR and the [qubinode_temporal] options).
  returned: always
  type: dict
restarted:
  description: Services restarted on this host.
  returned: always
  type: list
  elements: str
temporal:
  description: What the Temporal check found.
  returned: when engine=temporal and check_temporal
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.qubinode.airflow.plugins.module_utils._host import AIRFLOW_UNITS, installed_units, systemctl
from ansible_collections.qubinode.airflow.plugins.module_utils._orchestrator import (
    ENV_FILE,
    OrchestratorError,
    check_temporal,
    desired_settings,
    engine_of,
    host_tls,
    read,
    write,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            engine=dict(type="str", required=True, choices=["airflow", "temporal"]),
            temporal_address=dict(type="str", default="127.0.0.1:7233"),
            temporal_namespace=dict(type="str", default="airflow"),
            temporal_task_queue=dict(type="str", default="airflow-tasks"),
            temporal_tls_ca=dict(type="path"),
            temporal_tls_cert=dict(type="path"),
            temporal_tls_key=dict(type="path"),
            temporal_heartbeat_timeout=dict(type="int"),
            temporal_max_attempts=dict(type="int"),
            check_temporal=dict(type="bool", default=True),
            restart=dict(type="bool", default=True),
            airflow_config_dir=dict(type="path", default="/etc/airflow"),
            airflow_venv=dict(type="path", default="/opt/qubinode-airflow/venv"),
            airflow_user=dict(type="str", default="airflow"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = dict(changed=False, restarted=[], engine=p["engine"])
    try:
        if p["engine"] == "temporal":
            if ":" not in p["temporal_address"]:
                raise OrchestratorError("temporal_address %r: give host:port of the Temporal frontend, for example "
                                        "temporal1.example.com:7233" % p["temporal_address"])
            for name in ("temporal_heartbeat_timeout", "temporal_max_attempts"):
                if p[name] is not None and p[name] < 1:
                    raise OrchestratorError("%s must be 1 or more" % name)
            if bool(p["temporal_tls_cert"]) != bool(p["temporal_tls_key"]):
                raise OrchestratorError("temporal_tls_cert and temporal_tls_key go together: give both or neither")
            if p["temporal_tls_cert"] and not p["temporal_tls_ca"]:
                raise OrchestratorError("temporal_tls_cert is given without temporal_tls_ca: give the CA the "
                                        "frontend's certificate is checked against")
        tls = dict(ca=p["temporal_tls_ca"], cert=p["temporal_tls_cert"], key=p["temporal_tls_key"])
        if p["engine"] == "temporal" and not any(tls.values()):
            tls = host_tls(p["temporal_address"], p["airflow_config_dir"]) or tls
        path = os.path.join(p["airflow_config_dir"], ENV_FILE)
        current = read(path)
        want = desired_settings(p["engine"], p["temporal_address"], p["temporal_namespace"],
                                p["temporal_task_queue"], p["temporal_heartbeat_timeout"], p["temporal_max_attempts"],
                                tls)
        result.update(previous_engine=engine_of(current), settings=want)
        if p["engine"] == "temporal" and p["check_temporal"]:
            result["temporal"] = check_temporal(module, p["airflow_venv"], p["temporal_address"],
                                                p["temporal_namespace"], p["airflow_user"], p["airflow_config_dir"],
                                                tls)
        if current != want:
            result["changed"] = True
            if module._diff:
                result["diff"] = dict(before=current or {}, after=want, before_header=path, after_header=path)
            units = installed_units(AIRFLOW_UNITS, p["airflow_config_dir"]) if p["restart"] else []
            result["restarted"] = units
            if not module.check_mode:
                write(path, want)
                systemctl(module, "restart", units, OrchestratorError, p["airflow_config_dir"])
    except OrchestratorError as e:
        module.fail_json(msg=to_text(e), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
