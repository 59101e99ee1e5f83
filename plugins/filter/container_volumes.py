# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host directories a container sees, as podman volume specifications."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: container_volumes
short_description: Bind mounts of host directories at the same path, as podman volume specifications
version_added: 1.0.0
description:
  - Turns a list of host directories into C(path:path) or C(path:path:ro) volume specifications, in order.
  - A directory inside an earlier one with the same access is left out (its parent already shows it). A
    read-only directory inside a writable one is kept, so it stays read-only in the container.
  - A path that is not absolute and normalized, or that holds a C(:), a C(,) or a line break (which would add
    volume options or another mount), fails with the variable and the path named.
author: qubinode.airflow contributors (@qubinode)
options:
  _input:
    description: The directories, each a dict with C(path) (absolute) and C(read_only) (default false), and
      optionally C(var), the variable the path comes from, named in errors.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: The compose service's volumes
  ansible.builtin.set_fact:
    volumes: >-
      {{ [{'path': '/etc/airflow', 'read_only': true}, {'path': '/var/lib/airflow'},
          {'path': '/var/lib/airflow/dags', 'var': 'airflow_dags_folder'}] | qubinode.airflow.container_volumes }}
    # ['/etc/airflow:/etc/airflow:ro', '/var/lib/airflow:/var/lib/airflow']
"""

RETURN = r"""
_value:
  description: Volume specifications for podman (C(host:container[:ro])).
  type: list
  elements: str
"""

import posixpath

from ansible.errors import AnsibleFilterError


def _inside(path, parent):
    return parent == "/" or path.startswith(parent.rstrip("/") + "/")


def container_volumes(mounts):
    if not isinstance(mounts, list):
        raise AnsibleFilterError("container_volumes expects a list of {path, read_only}, got %s"
                                 % type(mounts).__name__)
    kept = []
    for index, mount in enumerate(mounts):
        if not isinstance(mount, dict) or "path" not in mount:
            raise AnsibleFilterError("container_volumes: entry %d is not a dict with a path: %r" % (index, mount))
        path, read_only = mount["path"], bool(mount.get("read_only", False))
        name = mount.get("var") or "entry %d" % index
        if (not isinstance(path, str) or not path.startswith("/") or posixpath.normpath(path) != path
                or any(c in path for c in ":,\n\r\0")):
            raise AnsibleFilterError(
                "%s (%r) must be an absolute, normalized path without ':', ',' or line breaks to be shown to the "
                "Airflow containers: fix the variable" % (name, path))
        if any(path == p or (_inside(path, p) and ro == read_only) for p, ro in kept):
            continue
        kept.append((path, read_only))
    return ["%s:%s%s" % (p, p, ":ro" if ro else "") for p, ro in kept]


class FilterModule(object):
    def filters(self):
        return {"container_volumes": container_volumes}
