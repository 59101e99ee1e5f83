# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Wait until a VM reaches a state (running by default)."""

from __future__ import annotations

from collections.abc import Sequence

from airflow.sdk import BaseSensorOperator

from qubinode_airflow.libvirt.hook import STATES, LibvirtHook, VMNotFound


class LibvirtVMStateSensor(BaseSensorOperator):
    """Succeeds when the VM is in `state`; a VM that does not exist yet keeps the sensor waiting."""

    template_fields: Sequence[str] = ("vm_name", "state")

    def __init__(self, *, vm_name: str, state: str = "running", libvirt_conn_id: str = LibvirtHook.default_conn_name,
                 **kwargs):
        super().__init__(**kwargs)
        if state not in STATES.values():
            raise ValueError("state %r is not a libvirt domain state: use one of %s" % (state, sorted(STATES.values())))
        self.vm_name = vm_name
        self.state = state
        self.libvirt_conn_id = libvirt_conn_id

    def poke(self, context) -> bool:
        try:
            now = LibvirtHook(libvirt_conn_id=self.libvirt_conn_id).state(self.vm_name)
        except VMNotFound:
            now = "absent"
        self.log.info("VM %s is %s (waiting for %s)", self.vm_name, now, self.state)
        return now == self.state


class LibvirtVMRunningSensor(LibvirtVMStateSensor):
    """Succeeds when the VM runs."""

    def __init__(self, **kwargs):
        kwargs.setdefault("state", "running")
        super().__init__(**kwargs)
