# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""libvirt through libvirt-python: define, start, stop, delete and describe virtual machines.

The connection (type ``libvirt``) holds the libvirt URI in its extra field ``uri`` or in its host
field (``qemu:///system`` when neither is set; ``qemu+ssh://root@kvm1/system`` reaches another
Qubinode host). ``test:///default`` is libvirt's built-in test driver, which needs no daemon.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException

DEFAULT_URI = "qemu:///system"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
STATES = {0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shutoff", 6: "crashed",
          7: "pmsuspended"}
# One connection per URI and process, reopened when it dies: tasks that run in one process (dag.test,
# a worker's task process) share it, and the test driver keeps its state between them.
_CONNECTIONS: dict[str, Any] = {}


class VMNotFound(AirflowException):
    """No domain of that name on the host."""


def check_size(**values: Any) -> None:
    """vcpus=2, memory_mib=2048, ...: each a positive integer (templated values arrive as text)."""
    for field, value in values.items():
        try:
            ok = int(value) >= 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise AirflowException("%s must be a positive integer, not %r" % (field, value))


def check_name(name: str, field: str = "name") -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise AirflowException("%s %r is not a valid VM name: use 1-63 letters, digits, '.', '_' or '-', "
                               "starting with a letter or digit" % (field, name))
    return name


class LibvirtHook(BaseHook):
    conn_name_attr = "libvirt_conn_id"
    default_conn_name = "libvirt_default"
    conn_type = "libvirt"
    hook_name = "libvirt (qubinode)"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {"hidden_fields": ["schema", "login", "password", "port"],
                "relabeling": {"host": "libvirt URI"},
                "placeholders": {"host": DEFAULT_URI}}

    def __init__(self, libvirt_conn_id: str | None = default_conn_name, uri: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.libvirt_conn_id = libvirt_conn_id
        self._uri = uri

    @property
    def uri(self) -> str:
        if self._uri:
            return self._uri
        if self.libvirt_conn_id:
            try:
                conn = self.get_connection(self.libvirt_conn_id)
            except Exception:  # noqa: BLE001 - an undefined default connection means the default URI
                if self.libvirt_conn_id != self.default_conn_name:
                    raise
            else:
                uri = conn.extra_dejson.get("uri") or (conn.host if conn.host and "://" in conn.host else None)
                if uri:
                    self._uri = uri
                    return uri
        self._uri = DEFAULT_URI
        return self._uri

    def get_conn(self):
        try:
            import libvirt
        except ImportError as e:
            raise AirflowException("libvirt-python is not installed in this Airflow environment: set "
                                   "airflow_libvirt: true for the airflow role (or pip install "
                                   "'qubinode-airflow[libvirt]')") from e
        conn = _CONNECTIONS.get(self.uri)
        if conn is not None:
            try:
                if conn.isAlive():
                    return conn
            except libvirt.libvirtError:
                pass
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as e:
            raise AirflowException("cannot connect to libvirt at %s: %s (check the URI in connection %r and "
                                   "that this user may use it)" % (self.uri, e, self.libvirt_conn_id)) from e
        _CONNECTIONS[self.uri] = conn
        return conn

    # -- lookups -------------------------------------------------------------------------------------

    def domain(self, name: str):
        import libvirt

        try:
            return self.get_conn().lookupByName(check_name(name))
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise VMNotFound("no VM named %r at %s" % (name, self.uri)) from e
            raise

    def exists(self, name: str) -> bool:
        try:
            self.domain(name)
            return True
        except VMNotFound:
            return False

    def state(self, name: str) -> str:
        return STATES.get(self.domain(name).state()[0], "unknown")

    def info(self, name: str) -> dict[str, Any]:
        """What the VM is: state, size, disks and network interfaces (and addresses when known)."""
        import libvirt

        dom = self.domain(name)
        state, _max_mem, mem_kib, vcpus, _cpu_time = dom.info()
        tree = ET.fromstring(dom.XMLDesc(0))
        disks = [d.find("source").get("file") or d.find("source").get("volume")
                 for d in tree.findall("./devices/disk[@device='disk']") if d.find("source") is not None]
        nics = []
        for iface in tree.findall("./devices/interface"):
            mac, source = iface.find("mac"), iface.find("source")
            nics.append({"mac": mac.get("address") if mac is not None else None,
                         "network": source.get("network") or source.get("bridge") if source is not None else None})
        addresses: list[str] = []
        if state == libvirt.VIR_DOMAIN_RUNNING:
            try:
                leases = dom.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE)
                addresses = sorted(a["addr"] for i in leases.values() for a in (i.get("addrs") or []))
            except libvirt.libvirtError:
                addresses = []  # the driver or network keeps no leases
        return {"name": dom.name(), "uuid": dom.UUIDString(), "state": STATES.get(state, "unknown"),
                "vcpus": vcpus, "memory_mib": mem_kib // 1024, "autostart": bool(dom.autostart()),
                "persistent": bool(dom.isPersistent()), "disks": disks, "interfaces": nics, "addresses": addresses}

    # -- changes -------------------------------------------------------------------------------------

    def domain_xml(self, name: str, vcpus: int, memory_mib: int, disk_path: str | None, network: str | None,
                   domain_type: str | None = None, machine_arch: str = "x86_64") -> str:
        """A plain VM: virtio disk and NIC, serial console, boots from its disk."""
        check_name(name)
        check_size(vcpus=vcpus, memory_mib=memory_mib)
        kind = domain_type or ("test" if self.get_conn().getType() == "Test" else "kvm")
        dom = ET.Element("domain", type=kind)
        ET.SubElement(dom, "name").text = name
        ET.SubElement(dom, "memory", unit="MiB").text = str(memory_mib)
        ET.SubElement(dom, "vcpu").text = str(vcpus)
        os_el = ET.SubElement(dom, "os")
        ET.SubElement(os_el, "type", arch=machine_arch).text = "hvm"
        ET.SubElement(os_el, "boot", dev="hd")
        if kind == "kvm":
            ET.SubElement(dom, "cpu", mode="host-passthrough")
        devices = ET.SubElement(dom, "devices")
        if disk_path:
            disk = ET.SubElement(devices, "disk", type="file", device="disk")
            ET.SubElement(disk, "driver", name="qemu", type="qcow2")
            ET.SubElement(disk, "source", file=disk_path)
            ET.SubElement(disk, "target", dev="vda", bus="virtio")
        if network:
            iface = ET.SubElement(devices, "interface", type="network")
            ET.SubElement(iface, "source", network=network)
            ET.SubElement(iface, "model", type="virtio")
        ET.SubElement(ET.SubElement(devices, "serial", type="pty"), "target", port="0")
        return ET.tostring(dom, encoding="unicode")

    def create_volume(self, pool: str, name: str, size_gb: int, backing: str | None = None) -> str:
        """A qcow2 volume in `pool` (on top of the pool's volume `backing` when given); returns its path."""
        import libvirt

        conn = self.get_conn()
        try:
            sp = conn.storagePoolLookupByName(pool)
        except libvirt.libvirtError as e:
            raise AirflowException("no storage pool %r at %s: create it or set storage_pool to one of %s"
                                   % (pool, self.uri, sorted(p.name() for p in conn.listAllStoragePools()))) from e
        try:
            return sp.storageVolLookupByName(name).path()
        except libvirt.libvirtError:
            pass
        vol = ET.Element("volume")
        ET.SubElement(vol, "name").text = name
        ET.SubElement(vol, "capacity", unit="GiB").text = str(int(size_gb))
        ET.SubElement(ET.SubElement(vol, "target"), "format", type="qcow2")
        if backing:
            try:
                base = sp.storageVolLookupByName(backing)
            except libvirt.libvirtError as e:
                raise AirflowException("base_image %r is not a volume of pool %r: upload the image into the "
                                       "pool first" % (backing, pool)) from e
            bs = ET.SubElement(vol, "backingStore")
            ET.SubElement(bs, "path").text = base.path()
            ET.SubElement(bs, "format", type="qcow2")
        return sp.createXML(ET.tostring(vol, encoding="unicode"), 0).path()

    def define(self, xml: str):
        import libvirt

        try:
            return self.get_conn().defineXML(xml)
        except libvirt.libvirtError as e:
            raise AirflowException("libvirt refused the domain definition: %s" % e) from e

    def start(self, name: str) -> bool:
        dom = self.domain(name)
        if dom.isActive():
            return False
        dom.create()
        return True

    def stop(self, name: str, timeout: float = 120, force: bool = False, poll: float = 1.0) -> bool:
        """ACPI shutdown, then wait; past the timeout, power off when `force`, else fail."""
        dom = self.domain(name)
        if not dom.isActive():
            return False
        dom.shutdown()
        deadline = time.monotonic() + timeout
        while dom.isActive():
            if time.monotonic() >= deadline:
                if not force:
                    raise AirflowException("VM %r did not shut down within %ss: raise timeout, or set force=True "
                                           "to power it off" % (name, timeout))
                dom.destroy()
                break
            time.sleep(poll)
        return True

    def delete(self, name: str, remove_storage: bool = True) -> list[str]:
        """Power off, undefine, and delete the volumes of its disks; returns the removed volume paths."""
        import libvirt

        try:
            dom = self.domain(name)
        except VMNotFound:
            return []
        disks = self.info(name)["disks"] if remove_storage else []
        if dom.isActive():
            dom.destroy()
        flags = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                 | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        try:
            dom.undefineFlags(flags)
        except libvirt.libvirtError:
            dom.undefine()
        removed = []
        for path in disks:
            try:
                self.get_conn().storageVolLookupByPath(path).delete(0)
                removed.append(path)
            except libvirt.libvirtError:
                self.log.warning("disk %s of %s is not a libvirt volume; left in place", path, name)
        return removed
