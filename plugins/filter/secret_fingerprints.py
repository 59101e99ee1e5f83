# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fingerprints of the stack's secrets: what identifies a secret without telling it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: secret_fingerprints
short_description: Fingerprints of secrets, which tell whether two values are the same without telling either
version_added: 1.0.0
description:
  - Maps each secret's name to the first 16 hexadecimal characters of a SHA-256 digest of the name and the value.
  - The same value under another name has another fingerprint. The secrets the collection generates are random
    (128 bits and more), so a fingerprint does not help to guess them; a weak password supplied from a vault is
    only as safe as the file that records its fingerprint (root-only).
author: qubinode.airflow contributors (@qubinode)
options:
  _input:
    description: The secrets, name to value; or, with O(name), a list of values of that one secret.
    type: raw
    required: true
  name:
    description: The secret's name when O(_input) is a list of its values (for example the Fernet keys of a rotation).
    type: str
"""

EXAMPLES = r"""
- name: Record the fingerprints
  ansible.builtin.copy:
    content: "{{ secrets_values | qubinode.airflow.secret_fingerprints | to_nice_yaml }}"
    dest: /etc/qubinode-airflow/secrets-record.yml
    mode: "0600"
"""

RETURN = r"""
_value:
  description: Name to fingerprint (16 hexadecimal characters); with O(name), the list of the values' fingerprints.
  type: raw
"""

import hashlib

from ansible.errors import AnsibleFilterError


def _fingerprint(name, value):
    return hashlib.sha256(("qubinode.airflow secret\0%s\0%s" % (name, value)).encode("utf-8")).hexdigest()[:16]


def secret_fingerprints(secrets, name=None):
    if name is not None:
        if not isinstance(secrets, (list, tuple)):
            raise AnsibleFilterError("secret_fingerprints with name= expects a list of values, got %s" % type(secrets).__name__)
        return [_fingerprint(name, value) for value in secrets]
    if not isinstance(secrets, dict):
        raise AnsibleFilterError("secret_fingerprints expects a dict of secrets, got %s" % type(secrets).__name__)
    return {key: _fingerprint(key, value) for key, value in secrets.items()}


class FilterModule(object):
    def filters(self):
        return {"secret_fingerprints": secret_fingerprints}
