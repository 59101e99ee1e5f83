# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The test hosts' connection: containers.podman.podman with pipelining.

The podman connection runs `podman exec` without `-i`, so a module cannot reach Python on stdin and
every task costs five podman calls (mount, mkdir, chmod, run, rm), each about a quarter of a CPU-second.
Three scenarios at once saturate two cores on those calls alone. This connection passes stdin when there
is data (`podman exec -i`), so Ansible pipelines: one `podman exec` per module run, as one SSH command
per module run on a real server with pipelining on. The container's file system is mounted only when a
file is copied or fetched.
"""

from __future__ import annotations

DOCUMENTATION = """
name: qa_podman
short_description: Run tasks in a podman test host, pipelined
description:
  - The podman connection of the containers.podman collection, with pipelining.
  - For the test hosts of the molecule scenarios only.
options:
  remote_addr:
    description: The container's name or ID.
    default: inventory_hostname
    vars:
      - name: ansible_host
      - name: inventory_hostname
      - name: ansible_podman_host
  remote_user:
    description: The user that runs commands in the container.
    vars:
      - name: ansible_user
  podman_extra_args:
    description: Extra arguments of the podman command line.
    default: ''
    vars:
      - name: ansible_podman_extra_args
  podman_executable:
    description: The podman command.
    default: podman
    vars:
      - name: ansible_podman_executable
"""

import shlex

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ConnectionBase
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection


class Connection(PodmanConnection):
    transport = "qa_podman"
    has_pipelining = True

    def _connect(self):
        # No `podman mount` per task: put_file and fetch_file mount when they need to.
        ConnectionBase._connect(self)
        self._connected = True

    def _ensure_mounted(self):
        if self._mount_point is None and not self.user:
            PodmanConnection._connect(self)

    def exec_command(self, cmd, in_data=None, sudoable=False):
        ConnectionBase.exec_command(self, cmd, in_data=in_data, sudoable=sudoable)
        args = ["exec"]
        if in_data is not None:
            args.append("-i")
        if self.user:
            args.extend(("--user", self.user))
        return self._podman(args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)

    def put_file(self, in_path, out_path):
        self._ensure_mounted()
        super().put_file(in_path, out_path)

    def fetch_file(self, in_path, out_path):
        self._ensure_mounted()
        super().fetch_file(in_path, out_path)
