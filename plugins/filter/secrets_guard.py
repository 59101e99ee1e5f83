# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whether a run's secrets would silently replace the ones the stack's hosts run with."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: secrets_guard
short_description: Say why the secrets of a run must not replace the ones the stack runs with, or nothing
version_added: 1.0.0
description:
  - Compares the fingerprints each host of the stack recorded (the secrets it runs with) with the fingerprints of
    the secrets of this run (see P(qubinode.airflow.secret_fingerprints#filter)), and says where and why they may
    not replace them.
  - A secret a host runs with but that this run would generate anew means the secrets store was lost or moved
    (a rebuilt store host, a reordered inventory), and is refused for every secret.
  - A supplied or stored value that differs from the one a host runs with is refused for the Fernet key (stored
    connections and variables would no longer decrypt) and the JWT secret (running Temporal attempts would no
    longer open), unless the one a host runs with is among the values a declared rotation keeps for a while
    (O(overlap)); other secrets (passwords, the webhook secret) change with the converge.
  - Returns an empty list when nothing is in the way, else one message per secret that names the hosts, the
    fingerprints, the store and the fix. Never a value.
author: qubinode.airflow contributors (@qubinode)
options:
  _input:
    description: The records, keyed by inventory host; each a dict with C(fingerprints) (name to fingerprint) and
      C(store_host), or null for a host without a record.
    type: dict
    required: true
  fingerprints:
    description: The fingerprints of this run's secrets, name to fingerprint.
    type: dict
    required: true
  origins:
    description: Where each secret of this run comes from, name to C(supplied), C(stored) or C(generated).
    type: dict
    required: true
  store_host:
    description: The host that keeps the secrets store in this run.
    type: str
    required: true
  store_path:
    description: The path of the secrets store.
    type: str
    required: true
  overlap:
    description: Name to the fingerprints of the values a declared rotation keeps beside the new one (the previous
      Fernet keys while their data is re-encrypted, the JWT secrets of an open window); a host or database that runs
      with one of them is not refused.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Stop before a new Fernet key replaces the one the stack runs with
  ansible.builtin.assert:
    that: _problems | length == 0
    fail_msg: "{{ _problems | join(' ') }}"
  vars:
    _problems: >-
      {{ records | qubinode.airflow.secrets_guard(fingerprints=fingerprints, origins=origins,
         store_host=secrets_store_host, store_path=secrets_store_path) }}
"""

RETURN = r"""
_value:
  description: The problems, one message per secret; empty when the run may go on.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

# Secrets whose replacement loses data or running work unless it is rotated.
KEEP = {
    "airflow_fernet_key": "every stored connection and variable would become unreadable",
    "airflow_jwt_secret": "running Temporal attempts could no longer be opened and issued API tokens would fail",
}

# How each of them is rotated instead.
ROTATE = {
    "airflow_fernet_key": (", or rotate it: supply the new key followed by the one the stack runs with (\"new,old\"), "
                           "or run playbooks/rotate.yml with rotate: [airflow_fernet_key]"),
    "airflow_jwt_secret": (", or rotate it: run playbooks/rotate.yml with rotate: [airflow_jwt_secret] (the one the stack "
                           "runs with keeps working for secrets_jwt_window)"),
}


def secrets_guard(records, fingerprints, origins, store_host, store_path, overlap=None):
    if not isinstance(records, dict) or not isinstance(fingerprints, dict) or not isinstance(origins, dict):
        raise AnsibleFilterError("secrets_guard expects dicts of records, fingerprints and origins")
    overlap = overlap or {}
    if not isinstance(overlap, dict):
        raise AnsibleFilterError("secrets_guard expects overlap as a dict of names to lists of fingerprints")
    lost, changed, moved_from = {}, {}, set()
    for host in sorted(records):
        record = records[host]
        if not record:
            continue
        if not isinstance(record, dict) or not isinstance(record.get("fingerprints"), dict):
            raise AnsibleFilterError("the secrets record of %s is not a dict with fingerprints: remove it only if "
                                     "the host runs no part of the stack any more" % host)
        for name, running in sorted(record["fingerprints"].items()):
            new = fingerprints.get(name)
            if new is None or new == running or running in (overlap.get(name) or []):
                continue
            origin = origins.get(name, "generated")
            if origin == "generated":
                lost.setdefault(name, []).append((host, running))
                if record.get("store_host") and record["store_host"] != store_host:
                    moved_from.add(record["store_host"])
            elif name in KEEP:
                changed.setdefault(name, []).append((host, running, new, origin))
    problems = []
    for name, entries in sorted(lost.items()):
        hosts = ", ".join(entry[0] for entry in entries)
        running = ", ".join(sorted({entry[1] for entry in entries}))
        moved = sorted(moved_from)
        problems.append(
            "%s: %s runs with the one of fingerprint %s, which the secrets store %s on %s does not hold; this run "
            "would generate a new one. The store was lost or moved%s. Restore %s on %s from a backup%s, or supply "
            "%s (for example from Ansible Vault). Nothing was changed." % (
                name, hosts, running, store_path, store_host,
                " (the hosts' records name %s as the store host)" % ", ".join(moved) if moved else "",
                store_path, store_host, ", set secrets_store_host: %s" % moved[0] if moved else "", name))
    for name, entries in sorted(changed.items()):
        problems.append(
            "%s: the %s value (fingerprint %s) is not the one %s runs with (fingerprint %s); replacing it %s. "
            "Supply the value the stack runs with%s. Nothing was changed." % (
                name, " and ".join(sorted({entry[3] for entry in entries})),
                ", ".join(sorted({entry[2] for entry in entries})), ", ".join(entry[0] for entry in entries),
                ", ".join(sorted({entry[1] for entry in entries})), KEEP[name], ROTATE.get(name, "")))
    return problems


class FilterModule(object):
    def filters(self):
        return {"secrets_guard": secrets_guard}
