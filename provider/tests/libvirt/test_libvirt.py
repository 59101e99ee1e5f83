"""The VM hook, operators and sensor against libvirt's built-in test driver (test:///default): real
libvirt-python calls and real domain/volume XML, handled by libvirt's own test hypervisor."""

from __future__ import annotations

import pathlib

import pytest
from conftest import xcom

from qubinode_airflow.libvirt import hook as hook_module
from qubinode_airflow.libvirt.hook import LibvirtHook, VMNotFound
from qubinode_airflow.libvirt.sensors import LibvirtVMRunningSensor

EXAMPLE = pathlib.Path(hook_module.__file__).resolve().parents[1] / "example_dags" / "qubinode_vm_lifecycle.py"


@pytest.fixture(autouse=True)
def fresh_test_driver(connection):
    """A new test hypervisor for every test (the driver keeps state per connection)."""
    hook_module._CONNECTIONS.clear()
    connection("libvirt_default", conn_type="libvirt", host="test:///default")
    yield
    hook_module._CONNECTIONS.clear()


def test_lifecycle_example_dag_with_teardown(run_dag):
    run, tis = run_dag("vm_teardown", EXAMPLE.read_text().replace('"qubinode_vm_lifecycle"', '"vm_teardown"'),
                       conf={"vm_name": "smoke1", "vcpus": 2, "memory_mib": 1024, "pool": "default-pool"})
    assert run.state == "success", {t: ti.state for t, ti in tis.items()}
    assert all(ti.state == "success" for ti in tis.values())
    info = xcom(run, "info")
    assert info["state"] == "running" and info["vcpus"] == 2 and info["memory_mib"] == 1024
    assert info["disks"] == ["/default-pool/smoke1.qcow2"]
    assert info["interfaces"][0]["network"] == "default"
    assert xcom(run, "delete") == {"name": "smoke1", "deleted": True, "volumes_removed": ["/default-pool/smoke1.qcow2"]}
    conn = LibvirtHook().get_conn()
    assert "smoke1" not in [d.name() for d in conn.listAllDomains()]
    assert "smoke1.qcow2" not in conn.storagePoolLookupByName("default-pool").listVolumes()


def test_lifecycle_example_dag_keeps_the_vm(run_dag):
    run, tis = run_dag("vm_keep", EXAMPLE.read_text().replace('"qubinode_vm_lifecycle"', '"vm_keep"'),
                       conf={"vm_name": "keep1", "pool": "default-pool", "teardown": False})
    assert run.state == "success"
    assert tis["stop"].state == "skipped" and tis["delete"].state == "skipped"
    assert LibvirtHook().state("keep1") == "running"


def test_create_is_idempotent_and_uses_a_base_image():
    hook = LibvirtHook()
    pool = hook.get_conn().storagePoolLookupByName("default-pool")
    pool.createXML("<volume><name>rhel9.qcow2</name><capacity unit='GiB'>10</capacity>"
                   "<target><format type='qcow2'/></target></volume>", 0)
    from qubinode_airflow.libvirt.operators import LibvirtCreateVMOperator

    op = LibvirtCreateVMOperator(task_id="c", vm_name="web1", storage_pool="default-pool", base_image="rhel9.qcow2",
                                 disk_gb=20, start=False)
    first = op.execute({})
    assert first["state"] == "shutoff" and first["disks"] == ["/default-pool/web1.qcow2"]
    vol_xml = pool.storageVolLookupByName("web1.qcow2").XMLDesc(0)
    assert "<path>/default-pool/rhel9.qcow2</path>" in vol_xml
    second = LibvirtCreateVMOperator(task_id="c", vm_name="web1", storage_pool="default-pool", vcpus=8, start=True).execute({})
    assert second["uuid"] == first["uuid"] and second["vcpus"] == first["vcpus"], "an existing VM was redefined"
    assert second["state"] == "running"


def test_stop_and_start_report_what_they_did():
    hook = LibvirtHook()
    assert hook.state("test") == "running"  # the driver's own domain
    assert hook.stop("test") is True
    assert hook.state("test") == "shutoff"
    assert hook.stop("test") is False
    assert hook.start("test") is True
    assert hook.start("test") is False


def test_sensor_waits_for_the_vm():
    sensor = LibvirtVMRunningSensor(task_id="s", vm_name="later1")
    assert sensor.poke({}) is False  # not defined yet
    hook = LibvirtHook()
    hook.define(hook.domain_xml("later1", 1, 256, None, None))
    assert sensor.poke({}) is False  # defined, shut off
    hook.start("later1")
    assert sensor.poke({}) is True


def test_delete_of_a_missing_vm_is_not_an_error():
    from qubinode_airflow.libvirt.operators import LibvirtDeleteVMOperator

    assert LibvirtDeleteVMOperator(task_id="d", vm_name="ghost").execute({}) == {
        "name": "ghost", "deleted": False, "volumes_removed": []}


@pytest.mark.parametrize("kwargs, message", [
    ({"vm_name": "bad name"}, "vm_name 'bad name' is not a valid VM name"),
    ({"vm_name": "vm2", "storage_pool": "nopool"}, "no storage pool 'nopool'.*default-pool"),
    ({"vm_name": "vm3", "storage_pool": "default-pool", "base_image": "missing.qcow2"},
     "base_image 'missing.qcow2' is not a volume of pool 'default-pool'"),
    ({"vm_name": "vm4", "storage_pool": "default-pool", "memory_mib": 0}, "memory_mib must be a positive integer"),
    ({"vm_name": "vm5", "storage_pool": "default-pool", "vcpus": "two"}, "vcpus must be a positive integer"),
])
def test_bad_input_names_the_field_and_creates_nothing(kwargs, message):
    from qubinode_airflow.libvirt.operators import LibvirtCreateVMOperator

    hook = LibvirtHook()
    pool = hook.get_conn().storagePoolLookupByName("default-pool")
    before = sorted(d.name() for d in hook.get_conn().listAllDomains()), sorted(pool.listVolumes())
    with pytest.raises(Exception, match=message):
        LibvirtCreateVMOperator(task_id="c", **kwargs).execute({})
    assert (sorted(d.name() for d in hook.get_conn().listAllDomains()), sorted(pool.listVolumes())) == before


def test_missing_vm_and_unreachable_uri(connection):
    with pytest.raises(VMNotFound, match="no VM named 'nope' at test:///default"):
        LibvirtHook().info("nope")
    connection("bad_uri", conn_type="libvirt", extra={"uri": "test:///nonexistent/file.xml"})
    with pytest.raises(Exception, match="cannot connect to libvirt at test:///nonexistent/file.xml"):
        LibvirtHook(libvirt_conn_id="bad_uri").get_conn()
