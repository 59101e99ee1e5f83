# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Build a VM on the Qubinode host, wait until it runs, report it, and (by default) take it down again.

Connection `libvirt_default` (type libvirt) names the host's libvirt URI; without it, qemu:///system.
Trigger with a conf such as {"vm_name": "web1", "vcpus": 2, "memory_mib": 4096, "base_image": "rhel9.qcow2",
"teardown": false} to keep the VM.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from qubinode_airflow.libvirt.operators import (
    LibvirtCreateVMOperator,
    LibvirtDeleteVMOperator,
    LibvirtStopVMOperator,
    LibvirtVMInfoOperator,
)
from qubinode_airflow.libvirt.sensors import LibvirtVMRunningSensor

with DAG(
    "qubinode_vm_lifecycle",
    description="Create, start, check, stop and delete a VM on the Qubinode host's libvirt",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["qubinode", "libvirt"],
    params={
        "vm_name": Param("qubinode-smoke", type="string", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"),
        "vcpus": Param(1, type="integer", minimum=1),
        "memory_mib": Param(512, type="integer", minimum=64),
        "disk_gb": Param(1, type="integer", minimum=0),
        "pool": Param("default", type="string"),
        "network": Param("default", type="string"),
        "base_image": Param(None, type=["null", "string"]),
        "teardown": Param(True, type="boolean"),
    },
) as dag:
    create = LibvirtCreateVMOperator(
        task_id="create", vm_name="{{ params.vm_name }}", vcpus="{{ params.vcpus }}",
        memory_mib="{{ params.memory_mib }}", disk_gb="{{ params.disk_gb }}", storage_pool="{{ params.pool }}",
        network="{{ params.network }}", base_image="{{ params.base_image or '' }}")
    running = LibvirtVMRunningSensor(task_id="wait_running", vm_name="{{ params.vm_name }}", poke_interval=5,
                                     timeout=600)
    info = LibvirtVMInfoOperator(task_id="info", vm_name="{{ params.vm_name }}")

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def teardown_requested(params=None) -> bool:
        return bool(params["teardown"])

    stop = LibvirtStopVMOperator(task_id="stop", vm_name="{{ params.vm_name }}", shutdown_timeout=120, force=True)
    delete = LibvirtDeleteVMOperator(task_id="delete", vm_name="{{ params.vm_name }}")

    create >> running >> info >> teardown_requested() >> stop >> delete
