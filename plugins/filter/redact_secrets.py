# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Text from a failed command, with the stack's secrets taken out before a message quotes it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: redact_secrets
short_description: Replace every secret of the stack in a text by its name
version_added: 1.0.0
description:
  - A failure message that quotes a command's error output may quote a secret with it, for example a database
    URL with its password in a traceback. This filter replaces each secret's value, as written and as it
    appears URL-encoded (in a connection URL), by C(<NAME>).
  - Lists of values and comma-separated values (the keys of a rotation) are replaced value by value.
    Values shorter than 8 characters are left alone (no secret of the stack is that short; replacing them
    would mangle the text).
author: qubinode.airflow contributors (@qubinode)
options:
  _input:
    description: The text.
    type: str
    required: true
  secrets:
    description: The secrets, name to value (C(secrets_values)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Fail quoting the error output
  ansible.builtin.fail:
    msg: "{{ result.stderr_lines[-3:] | join(' ') | qubinode.airflow.redact_secrets(secrets_values) }}"
"""

RETURN = r"""
_value:
  description: The text without any secret's value.
  type: str
"""

from urllib.parse import quote, quote_plus

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types


def _values(value):
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _values(item)
    elif value is not None:
        text = str(value)
        yield text
        yield from text.split(",")


def redact_secrets(text, secrets):
    if not isinstance(secrets, dict):
        raise AnsibleFilterError("redact_secrets expects the secrets as a dict, got %s" % type(secrets).__name__)
    if not isinstance(text, string_types):
        text = str(text)
    forms = {}
    for name, value in secrets.items():
        for one in _values(value):
            if len(one) < 8:
                continue
            for form in (one, quote(one, safe=""), quote_plus(one), quote(one, safe="").replace("/", "%2F")):
                forms.setdefault(form, "<%s>" % name)
    # the longest first: a value that contains another is replaced whole
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, forms[form])
    return text


class FilterModule(object):
    def filters(self):
        return {"redact_secrets": redact_secrets}
