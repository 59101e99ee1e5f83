# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one place that says which operating systems the roles support."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: platform_error
short_description: Say why a host's operating system is not supported, or nothing
version_added: 1.0.0
description:
  - Reads a host's facts and returns an empty string when the collection's roles support its operating system
    (Debian 12, the RHEL 9 family, Fedora), else a message that names the system found and the supported ones.
  - Every role of the collection checks the host with it before it changes anything.
author: qubinode.airflow contributors (@qubinode)
options:
  _input:
    description: The host's facts (C(ansible_facts)); C(os_family), C(distribution) and C(distribution_major_version) are read.
    type: dict
    required: true
  role:
    description: The role that checks, named in the message.
    type: str
    default: qubinode.airflow
"""

EXAMPLES = r"""
- name: Check the operating system is supported
  ansible.builtin.assert:
    that: ansible_facts | qubinode.airflow.platform_error('qubinode.airflow.postgresql') == ''
    fail_msg: "{{ ansible_facts | qubinode.airflow.platform_error('qubinode.airflow.postgresql') }}"
    quiet: true
"""

RETURN = r"""
_value:
  description: An empty string when supported, else why not.
  type: str
"""

from ansible.errors import AnsibleFilterError

SUPPORTED = "Debian 12, RHEL/Rocky/AlmaLinux/CentOS Stream 9, Fedora"


def platform_error(facts, role="qubinode.airflow"):
    if not isinstance(facts, dict):
        raise AnsibleFilterError("platform_error expects the host's facts (ansible_facts), got %s"
                                 % type(facts).__name__)
    family = facts.get("os_family")
    distribution = facts.get("distribution")
    major = str(facts.get("distribution_major_version", ""))
    if distribution == "Fedora":
        return ""
    if family == "Debian" and distribution == "Debian" and major == "12":
        return ""
    if family == "RedHat" and major == "9":
        return ""
    found = " ".join(str(part) for part in (distribution, facts.get("distribution_version")) if part)
    return "%s is not supported by %s. Supported: %s." % (found or "an unknown system", role, SUPPORTED)


class FilterModule(object):
    def filters(self):
        return {"platform_error": platform_error}
