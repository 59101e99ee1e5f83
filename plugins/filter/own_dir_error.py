# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one check of a directory setting that a role makes root-only."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: own_dir_error
short_description: Say why a path cannot be a root-only directory of the stack's own, or nothing
version_added: 1.0.0
description:
  - Roles and playbooks make some directories root-only (mode 0700) and write secrets or database dumps into
    them. Such a directory must be a normalized absolute path and must not be a directory the system or other
    software shares, such as C(/etc) or C(/var/backups), whose mode the role would otherwise change.
  - Returns an empty string when the path qualifies, else a message that names the setting, the value and the
    fix. Every setting of that kind is checked with it before anything changes.
author: qubinode.airflow contributors (@qubinode)
options:
  _input:
    description: The directory.
    type: raw
    required: true
  setting:
    description: The variable that holds the directory, named in the message.
    type: str
    required: true
  example:
    description: A suitable directory, given in the message as the fix.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Check the directory of upgrade dumps
  ansible.builtin.assert:
    that: airflow_upgrade_backup_dir | qubinode.airflow.own_dir_error('airflow_upgrade_backup_dir', '/var/backups/x') == ''
    fail_msg: "{{ airflow_upgrade_backup_dir | qubinode.airflow.own_dir_error('airflow_upgrade_backup_dir', '/var/backups/x') }}"
    quiet: true
"""

RETURN = r"""
_value:
  description: An empty string when the path qualifies, else why not.
  type: str
"""

import posixpath

# Directories the system or other software owns: a role never changes their mode or owner.
SHARED_DIRS = ("/", "/boot", "/dev", "/dev/shm", "/etc", "/home", "/opt", "/proc", "/root", "/run", "/srv",
               "/sys", "/tmp", "/usr", "/usr/local", "/var", "/var/backups", "/var/lib", "/var/log", "/var/tmp")


def own_dir_error(path, setting, example):
    problem = None
    if not isinstance(path, str) or not path:
        problem = "is not a path"
    elif not path.startswith("/") or any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        problem = "is not an absolute path on one line"
    elif "/" + posixpath.normpath(path).lstrip("/") != path:
        problem = "is not normalized (write it as /%s)" % posixpath.normpath(path).lstrip("/")
    elif path in SHARED_DIRS:
        problem = "is a directory the system shares"
    if problem is None:
        return ""
    return ("%s (%r) %s. It must be a directory of its own, which the role makes root-only (0700); "
            "not one of %s. For example: %s." % (setting, path, problem, ", ".join(SHARED_DIRS), example))


class FilterModule(object):
    def filters(self):
        return {"own_dir_error": own_dir_error}
