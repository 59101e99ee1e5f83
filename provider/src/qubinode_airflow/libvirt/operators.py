# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""VM lifecycle tasks on a Qubinode host's libvirt. Each is idempotent: a VM that is already as asked
is left alone, and every operator returns the VM's info (for XCom)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from qubinode_airflow.libvirt.hook import LibvirtHook, check_name, check_size


class _VMOperator(BaseOperator):
    template_fields: Sequence[str] = ("vm_name",)
    ui_color = "#c9e4f5"

    def __init__(self, *, vm_name: str, libvirt_conn_id: str = LibvirtHook.default_conn_name, **kwargs):
        super().__init__(**kwargs)
        self.vm_name = vm_name
        self.libvirt_conn_id = libvirt_conn_id

    @property
    def hook(self) -> LibvirtHook:
        return LibvirtHook(libvirt_conn_id=self.libvirt_conn_id)


class LibvirtCreateVMOperator(_VMOperator):
    """Define a VM (a new qcow2 disk in `storage_pool`, on top of `base_image` when given) and start it.

    A VM of that name that already exists is kept as it is. `domain_xml` replaces the generated
    definition entirely (templated), for anything the parameters do not cover.
    """

    template_fields: Sequence[str] = ("vm_name", "vcpus", "memory_mib", "disk_gb", "storage_pool", "network", "base_image",
                                      "domain_xml")

    def __init__(self, *, vcpus: int = 2, memory_mib: int = 2048, disk_gb: int = 20, storage_pool: str = "default",
                 network: str | None = "default", base_image: str | None = None, domain_xml: str | None = None,
                 domain_type: str | None = None, start: bool = True, autostart: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.vcpus = vcpus
        self.memory_mib = memory_mib
        self.disk_gb = disk_gb
        self.storage_pool = storage_pool
        self.network = network
        self.base_image = base_image
        self.domain_xml = domain_xml
        self.domain_type = domain_type
        self.start = start
        self.autostart = autostart

    def execute(self, context) -> dict[str, Any]:
        hook = self.hook
        name = check_name(self.vm_name, "vm_name")
        check_size(vcpus=self.vcpus, memory_mib=self.memory_mib)
        if hook.exists(name):
            self.log.info("VM %s already exists at %s; its definition is left as it is", name, hook.uri)
        else:
            if self.domain_xml:
                xml = self.domain_xml
            else:
                disk = (hook.create_volume(self.storage_pool, "%s.qcow2" % name, int(self.disk_gb), self.base_image)
                        if self.disk_gb else None)
                xml = hook.domain_xml(name, int(self.vcpus), int(self.memory_mib), disk, self.network,
                                      self.domain_type)
            dom = hook.define(xml)
            if dom.name() != name:
                raise ValueError("domain_xml defines %r, not vm_name %r" % (dom.name(), name))
            self.log.info("defined VM %s at %s", name, hook.uri)
        if self.autostart:
            hook.domain(name).setAutostart(1)
        if self.start and hook.start(name):
            self.log.info("started VM %s", name)
        return hook.info(name)


class LibvirtStartVMOperator(_VMOperator):
    """Start a defined VM (nothing happens when it runs already)."""

    def execute(self, context) -> dict[str, Any]:
        hook = self.hook
        self.log.info("VM %s %s", self.vm_name, "started" if hook.start(self.vm_name) else "was running already")
        return hook.info(self.vm_name)


class LibvirtStopVMOperator(_VMOperator):
    """Shut a VM down (ACPI), waiting up to `shutdown_timeout` seconds; `force` powers it off after that."""

    def __init__(self, *, shutdown_timeout: float = 120, force: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.shutdown_timeout = shutdown_timeout
        self.force = force

    def execute(self, context) -> dict[str, Any]:
        hook = self.hook
        stopped = hook.stop(self.vm_name, timeout=self.shutdown_timeout, force=self.force)
        self.log.info("VM %s %s", self.vm_name, "stopped" if stopped else "was not running")
        return hook.info(self.vm_name)


class LibvirtDeleteVMOperator(_VMOperator):
    """Power off and undefine a VM, deleting its disk volumes unless `remove_storage` is false.
    A VM that does not exist is not an error."""

    def __init__(self, *, remove_storage: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.remove_storage = remove_storage

    def execute(self, context) -> dict[str, Any]:
        hook = self.hook
        existed = hook.exists(self.vm_name)
        removed = hook.delete(self.vm_name, remove_storage=self.remove_storage)
        self.log.info("VM %s %s; volumes removed: %s", self.vm_name, "deleted" if existed else "did not exist",
                      removed or "none")
        return {"name": self.vm_name, "deleted": existed, "volumes_removed": removed}


class LibvirtVMInfoOperator(_VMOperator):
    """Return what the VM is: state, vCPUs, memory, disks, interfaces, addresses."""

    def execute(self, context) -> dict[str, Any]:
        return self.hook.info(self.vm_name)
