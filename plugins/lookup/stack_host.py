# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How this host reaches the service of an inventory group: the one rule the roles' address defaults share."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: stack_host
short_description: The address this host reaches a group's service on
version_added: 1.0.0
description:
  - For each group named, returns how the current host reaches the service that the group's first host
    runs - the loopback address when that first host is the current host (or the group is missing or empty),
    else the first host's C(ansible_host), else its inventory name.
  - The roles' address defaults (the database host, the api-server, Temporal's frontend) use it, so one
    inventory layout gives the same answer everywhere.
author: qubinode.airflow contributors (@qubinode)
options:
  _terms:
    description: Names of inventory groups.
    type: list
    elements: str
    required: true
  local_if_member:
    description: Return the loopback address whenever the current host is any member of the group, not only its first.
    type: bool
    default: false
  loopback:
    description: The address returned for the current host.
    type: str
    default: 127.0.0.1
"""

EXAMPLES = r"""
- name: Show where this host finds the metadata database
  ansible.builtin.debug:
    msg: "{{ lookup('qubinode.airflow.stack_host', 'airflow_db') }}"
"""

RETURN = r"""
_raw:
  description: One address or host name per group named.
  type: list
  elements: str
"""

from ansible.errors import AnsibleLookupError
from ansible.module_utils.six import string_types
from ansible.plugins.lookup import LookupBase


def stack_host(group, me, groups, hostvars, local_if_member=False, loopback="127.0.0.1"):
    if not isinstance(group, string_types) or not group:
        raise AnsibleLookupError("stack_host takes inventory group names, got %r" % (group,))
    members = list(groups.get(group) or [])
    if not members or members[0] == me or (local_if_member and me in members):
        return loopback
    first = members[0]
    try:
        address = hostvars[first].get("ansible_host")
    except (KeyError, AttributeError):
        address = None
    return address or first


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        if "inventory_hostname" not in variables:
            raise AnsibleLookupError("stack_host runs in a play: it needs inventory_hostname, groups and hostvars")
        return [
            stack_host(group, variables["inventory_hostname"], variables.get("groups") or {},
                       variables.get("hostvars") or {}, self.get_option("local_if_member"),
                       self.get_option("loopback"))
            for group in terms
        ]
