# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Virtual machines on the Qubinode host's libvirt, as Airflow tasks."""
