# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""airflow.cfg from role input, escaped for Airflow's parser: a value cannot add a key."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: airflow_cfg
short_description: Render airflow.cfg from a mapping of sections, escaped for Airflow's parser
version_added: 1.0.0
description:
  - Renders a mapping of sections, each a mapping of keys to values, as airflow.cfg text; sections and keys
    sorted, null and empty values left out.
  - C(%) is doubled, since Airflow's parser interpolates it. A line break in a value, or a section or key
    that is not a plain name, fails with the section and key named.
author: qubinode.airflow contributors (@qubinode)
options:
  _input:
    description: Sections of airflow.cfg.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Write airflow.cfg
  ansible.builtin.copy:
    content: "{{ {'core': {'parallelism': 32}} | qubinode.airflow.airflow_cfg }}"
    dest: /etc/airflow/airflow.cfg
    mode: "0640"
"""

RETURN = r"""
_value:
  description: The airflow.cfg text.
  type: str
"""

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def airflow_cfg(sections):
    if not isinstance(sections, dict):
        raise AnsibleFilterError("airflow_config must be a mapping of sections to mappings of keys")
    lines = []
    for section in sorted(sections):
        keys = sections[section]
        if not isinstance(section, string_types) or not NAME_RE.match(section):
            raise AnsibleFilterError("airflow_config: section %r is not a plain name (letters, digits, '_', '.', '-')"
                                     % (section,))
        if not isinstance(keys, dict):
            raise AnsibleFilterError("airflow_config.%s must be a mapping of keys to values" % section)
        lines.append("[%s]" % section)
        for key in sorted(keys):
            value = keys[key]
            if not isinstance(key, string_types) or not NAME_RE.match(key):
                raise AnsibleFilterError("airflow_config.%s: key %r is not a plain name" % (section, key))
            if value is None:
                continue
            if isinstance(value, bool):
                value = "True" if value else "False"
            elif isinstance(value, (dict, list)):
                raise AnsibleFilterError("airflow_config.%s.%s: give a string, not a %s (JSON values as a "
                                         "string, for example with to_json)" % (section, key, type(value).__name__))
            text = "%s" % (value,)
            if "\n" in text or "\r" in text:
                raise AnsibleFilterError("airflow_config.%s.%s holds a line break, which would start a new key in "
                                         "airflow.cfg: put the value on one line" % (section, key))
            if text == "":
                continue
            lines.append("%s = %s" % (key, text.replace("%", "%%")))
        lines.append("")
    return "\n".join(lines) + "\n"


class FilterModule(object):
    def filters(self):
        return {"airflow_cfg": airflow_cfg}
