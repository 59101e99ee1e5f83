# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Ansible playbooks and roles as Airflow tasks, run through ansible-runner."""
