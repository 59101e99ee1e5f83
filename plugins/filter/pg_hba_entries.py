# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pg_hba.conf entries from role input, checked field by field: no smuggled line, no weak method."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: pg_hba_entries
short_description: Check extra pg_hba.conf entries field by field
version_added: 1.0.0
description:
  - Returns the entries unchanged when every field is safe to write into pg_hba.conf; otherwise fails
    naming the entry, the field and the fix.
  - C(database) and C(user) are names or keywords separated by commas (no space, quote, C(#) or C(@file)).
    C(address) is a CIDR network, a host name, C(samehost) or C(samenet) (none for C(local)). C(method) is
    C(scram-sha-256) or C(cert) over TCP, C(peer) or C(scram-sha-256) for C(local).
author: qubinode.airflow contributors (@qubinode)
options:
  _input:
    description: Entries with type, database, user, address and method.
    type: list
    elements: dict
    required: true
  var:
    description: Name of the variable, for messages.
    type: str
    default: postgresql_hba_extra
"""

EXAMPLES = r"""
- name: Check the extra entries
  ansible.builtin.set_fact:
    _entries: "{{ postgresql_hba_extra | qubinode.airflow.pg_hba_entries }}"
"""

RETURN = r"""
_value:
  description: The entries, unchanged.
  type: list
  elements: dict
"""

import ipaddress
import re

from ansible.errors import AnsibleFilterError

# pg_hba database and user fields: names, comma lists and +group; no @file include, quote or comment.
HBA_NAME_RE = re.compile(r"^\+?[A-Za-z0-9_][A-Za-z0-9_.$-]*(?:,\+?[A-Za-z0-9_][A-Za-z0-9_.$-]*)*$")
HBA_HOST_RE = re.compile(r"^\.?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$")
HBA_METHODS = {"local": ("peer", "scram-sha-256"), "host": ("scram-sha-256", "cert"),
               "hostssl": ("scram-sha-256", "cert"), "hostnossl": ("scram-sha-256",)}


def pg_hba_entries(entries, var="postgresql_hba_extra"):
    """The entries, each field checked; an AnsibleFilterError names the entry, the field and the fix."""
    for index, entry in enumerate(entries or []):
        where = "%s[%d]" % (var, index)
        kind = entry.get("type") or "hostssl"
        if kind not in HBA_METHODS:
            raise AnsibleFilterError("%s.type %r: use local, host, hostssl or hostnossl" % (where, kind))
        for field in ("database", "user"):
            value = "%s" % (entry.get(field) or "",)
            if not HBA_NAME_RE.match(value):
                raise AnsibleFilterError("%s.%s %r: give names or keywords (all, sameuser, replication...) "
                                         "separated by commas, without spaces, quotes, '#' or '@'"
                                         % (where, field, value))
        address = entry.get("address")
        if kind == "local":
            if address:
                raise AnsibleFilterError("%s.address: a local entry takes no address" % where)
        else:
            address = "%s" % (address or "",)
            ok = address in ("samehost", "samenet") or (HBA_HOST_RE.match(address) and not address[0].isdigit())
            if not ok:
                try:
                    ipaddress.ip_network(address, strict=True)
                    ok = "/" in address
                except ValueError:
                    ok = False
            if not ok:
                raise AnsibleFilterError("%s.address %r: give a CIDR network (10.0.0.0/8, 192.0.2.7/32), a host "
                                         "name, samehost or samenet" % (where, address))
        method = entry.get("method")
        if method not in HBA_METHODS[kind]:
            raise AnsibleFilterError("%s.method %r is not allowed for %s entries: use %s"
                                     % (where, method, kind, " or ".join(HBA_METHODS[kind])))
    return entries


class FilterModule(object):
    def filters(self):
        return {"pg_hba_entries": pg_hba_entries}
