"""container_volumes: what the Airflow containers see of the host, and no path that adds a mount option."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.qubinode.airflow.plugins.filter.container_volumes import container_volumes


def test_order_access_and_nested_directories():
    mounts = [
        {"path": "/etc/airflow", "read_only": True},
        {"path": "/var/lib/airflow"},
        {"path": "/opt/airflow/src/qubinode-airflow", "read_only": True},
        # read-only inside the writable home: kept, so the container cannot write it
        {"path": "/var/lib/airflow/collections", "read_only": True},
        # writable inside the writable home: the home already shows it
        {"path": "/var/lib/airflow/dags"},
        {"path": "/srv/dags"},
        {"path": "/srv/dags"},
    ]
    assert container_volumes(mounts) == [
        "/etc/airflow:/etc/airflow:ro",
        "/var/lib/airflow:/var/lib/airflow",
        "/opt/airflow/src/qubinode-airflow:/opt/airflow/src/qubinode-airflow:ro",
        "/var/lib/airflow/collections:/var/lib/airflow/collections:ro",
        "/srv/dags:/srv/dags",
    ]


def test_a_sibling_with_a_common_prefix_is_not_inside():
    assert container_volumes([{"path": "/var/lib/airflow"}, {"path": "/var/lib/airflow-dags"}]) == [
        "/var/lib/airflow:/var/lib/airflow", "/var/lib/airflow-dags:/var/lib/airflow-dags"]


@pytest.mark.parametrize("path", [
    "/srv/dags:/etc:rw",          # a second mount through the separator
    "/srv/dags,rw",               # an option
    "/srv/dags\n- /:/host",       # a line in the compose file
    "relative/dags",
    "/srv/../etc",
    "/srv/dags/",
    "",
    None,
])
def test_a_path_that_would_change_the_mount_is_refused_with_its_variable(path):
    with pytest.raises(AnsibleFilterError, match="airflow_dags_folder"):
        container_volumes([{"path": "/var/lib/airflow"}, {"path": path, "var": "airflow_dags_folder"}])


def test_not_a_list():
    with pytest.raises(AnsibleFilterError, match="expects a list"):
        container_volumes("/srv/dags")
