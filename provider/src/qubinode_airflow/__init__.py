# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Airflow side of the qubinode.airflow collection (an Airflow provider package)."""

__version__ = "0.1.0"


def get_provider_info():
    """What Airflow lists for this provider (`airflow providers list`, `airflow config list`)."""
    from qubinode_airflow.temporal.codec import OPTIONS, SECTION

    return {
        "package-name": "qubinode-airflow",
        "name": "Qubinode Airflow",
        "description": "Temporal executor and worker, Ansible and libvirt operators, and the DAG repository "
                       "webhook and status page of the qubinode.airflow collection.",
        "versions": [__version__],
        "integrations": [
            {"integration-name": "Ansible", "tags": ["software"]},
            {"integration-name": "libvirt", "tags": ["software"]},
        ],
        "hooks": [
            {"integration-name": "Ansible", "python-modules": ["qubinode_airflow.ansible.hook"]},
            {"integration-name": "libvirt", "python-modules": ["qubinode_airflow.libvirt.hook"]},
        ],
        "operators": [
            {"integration-name": "Ansible", "python-modules": ["qubinode_airflow.ansible.operators"]},
            {"integration-name": "libvirt", "python-modules": ["qubinode_airflow.libvirt.operators"]},
        ],
        "sensors": [{"integration-name": "libvirt", "python-modules": ["qubinode_airflow.libvirt.sensors"]}],
        "connection-types": [
            {"connection-type": "qubinode_ansible", "hook-class-name": "qubinode_airflow.ansible.hook.AnsibleHook",
             "hook-name": "Ansible inventory (qubinode)"},
            {"connection-type": "libvirt", "hook-class-name": "qubinode_airflow.libvirt.hook.LibvirtHook",
             "hook-name": "libvirt (qubinode)"},
        ],
        "executors": ["qubinode_airflow.temporal.executor.TemporalExecutor"],
        "cli": ["qubinode_airflow.cli.get_cli_commands"],
        "config": {
            SECTION: {
                "description": "Where the Temporal executor sends task attempts and how they are retried.",
                "options": {
                    name: {"description": description, "version_added": "0.1.0", "type": kind, "example": None,
                           "default": default}
                    for name, (default, kind, description) in OPTIONS.items()
                },
            },
        },
    }
