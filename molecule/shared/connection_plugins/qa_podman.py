# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The test hosts' connection: containers.podman.podman with pipelining, and nsenter for commands.

The podman connection runs `podman exec` without `-i`, so a module cannot reach Python on stdin and
every task costs five podman calls (mount, mkdir, chmod, run, rm), each about a quarter of a CPU-second.
Three scenarios at once saturate two cores on those calls alone. This connection passes stdin when there
is data, so Ansible pipelines: one command per module run, as one SSH command per module run on a real
server with pipelining on. The container's file system is mounted only when a file is copied or fetched.

That one command is `nsenter` into the namespaces of the container's init (its PID cached on the
controller, checked against the container's uuid before each use), with the init's environment: about
4 ms of CPU where `podman exec` costs about 140 ms (the podman command, conmon and runc) on the test
machines. Before it enters the namespaces, the command joins the container's cgroup in every hierarchy,
as `podman exec` does: it runs in the container's mount, PID, network, IPC, UTS and cgroup namespaces, as
root, and podman run by a task inside the host (the podman scenario) makes its cgroups where it would
under `podman exec`. A host can set ansible_qa_podman_nsenter to false to keep `podman exec`.
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
  nsenter:
    description: Run commands with nsenter in the container's namespaces instead of podman exec (root only).
    type: bool
    default: true
    vars:
      - name: ansible_qa_podman_nsenter
"""

import os
import shlex
import subprocess
import tempfile

from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.errors import AnsibleError
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

display = Display()


def _environ(pid):
    """The environment of process `pid` as a dict."""
    with open("/proc/%s/environ" % pid, "rb") as f:
        pairs = [item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item]
    return dict((k.decode(), v.decode()) for k, v in pairs)


def _cgroup_procs(path):
    """The cgroup.procs files of cgroup `path` in every cgroup hierarchy mounted on the controller."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                procs = os.path.join(fields[4], path.lstrip("/"), "cgroup.procs")
                if os.path.isfile(procs):
                    found.append(procs)
    return found


def _joiner(procs):
    """A preexec function: the child joins the cgroups whose cgroup.procs files are `procs`."""
    def join():
        pid = str(os.getpid()).encode()
        for p in procs:
            fd = os.open(p, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
    return join


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

    def _init(self):
        """(PID, environment, cgroup path) of the container's init; PID and path are cached in a file on the
        controller and used only while that process still carries the container's uuid."""
        cache = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY") or tempfile.gettempdir(),
                             "qa_podman-%s.pid" % self._container_id)
        try:
            with open(cache) as f:
                pid, uuid, cgroup = f.read().split()
            env = _environ(pid)
            if env.get("container_uuid") == uuid:
                return pid, env, cgroup
        except (OSError, ValueError):
            pass
        rc, out, err = self._podman(["inspect", "--format", "{{.State.Pid}} {{.Id}} {{.State.CgroupPath}}"])
        if rc != 0:
            raise AnsibleError("podman inspect %s failed: %s" % (self._container_id, to_native(err)))
        pid, cid, cgroup = to_native(out).split()
        env = _environ(pid)
        if env.get("container_uuid") != cid[:32]:
            raise AnsibleError("the init process %s of %s does not carry its uuid" % (pid, self._container_id))
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(cache))
        with os.fdopen(fd, "w") as f:
            f.write("%s %s %s\n" % (pid, cid[:32], cgroup))
        os.replace(tmp, cache)
        return pid, env, cgroup

    def exec_command(self, cmd, in_data=None, sudoable=False):
        ConnectionBase.exec_command(self, cmd, in_data=in_data, sudoable=sudoable)
        argv = shlex.split(to_native(cmd, errors="surrogate_or_strict"))
        if self.user or not self.get_option("nsenter"):
            args = ["exec"]
            if in_data is not None:
                args.append("-i")
            if self.user:
                args.extend(("--user", self.user))
            return self._podman(args, argv, in_data)
        pid, env, cgroup = self._init()
        procs = _cgroup_procs(cgroup)
        if not procs:
            raise AnsibleError("no cgroup %s of %s is mounted here" % (cgroup, self._container_id))
        local_cmd = [to_bytes(a, errors="surrogate_or_strict") for a in ["nsenter", "--target", pid, "--all", "--"] + argv]
        display.vvv("RUN %s" % (local_cmd,), host=self._container_id)
        p = subprocess.Popen(local_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env, cwd="/", preexec_fn=_joiner(procs))
        stdout, stderr = p.communicate(input=in_data)
        return p.returncode, stdout, stderr

    def put_file(self, in_path, out_path):
        self._ensure_mounted()
        super().put_file(in_path, out_path)

    def fetch_file(self, in_path, out_path):
        self._ensure_mounted()
        super().fetch_file(in_path, out_path)
