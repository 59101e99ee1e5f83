# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One digest of a set of files, from their checksums: what a copy of them on a host is compared by."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: content_digest
short_description: A SHA-256 digest of files from their paths and checksums
version_added: 1.0.0
description:
  - Digests the files found by M(ansible.builtin.find) with C(get_checksum=true), each by its path relative
    to O(root) and its checksum, in sorted order.
  - The digest depends on the files' names and contents only, not on where the set lies nor on the order the
    files were found in.
author: qubinode.airflow contributors (@qubinode)
options:
  _input:
    description: The files, each a dict with C(path) and C(checksum) (the C(files) of M(ansible.builtin.find)).
    type: list
    elements: dict
    required: true
  root:
    description: The directory the paths are made relative to; every path must lie inside it.
    type: path
    required: true
"""

EXAMPLES = r"""
- name: Checksum the files
  ansible.builtin.find:
    paths: /srv/content
    recurse: true
    get_checksum: true
  register: files

- name: Their digest
  ansible.builtin.debug:
    msg: "{{ files.files | qubinode.airflow.content_digest('/srv/content') }}"
"""

RETURN = r"""
_value:
  description: The SHA-256 digest, 64 hexadecimal characters.
  type: str
"""

import hashlib
import posixpath

from ansible.errors import AnsibleFilterError


def content_digest(files, root):
    if not isinstance(files, list):
        raise AnsibleFilterError("content_digest expects a list of files, got %s" % type(files).__name__)
    base = posixpath.normpath(root)
    lines = []
    for entry in files:
        if not isinstance(entry, dict) or not entry.get("path") or not entry.get("checksum"):
            raise AnsibleFilterError("content_digest: every file needs a path and a checksum (find with "
                                     "get_checksum=true), got %r" % (entry,))
        relative = posixpath.relpath(posixpath.normpath(entry["path"]), base)
        if relative == "." or relative.startswith("../") or relative == "..":
            raise AnsibleFilterError("content_digest: %s is not inside %s" % (entry["path"], root))
        lines.append("%s %s" % (relative, entry["checksum"]))
    return hashlib.sha256("\n".join(sorted(lines)).encode("utf-8")).hexdigest()


class FilterModule(object):
    def filters(self):
        return {"content_digest": content_digest}
