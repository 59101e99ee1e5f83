# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE: this module is internal to the qubinode.airflow collection. Its API may change
# without notice; do not import it from other collections.
"""A DAG repository's requirements file, resolved before its commit goes live.

The file comes from the repository and is hostile: only lines that are a bare package requirement (a name,
extras, version specifiers, an environment marker) are read; options, files, URLs and paths are listed as not
read and never reach pip. A package must be one the stack's constraints pin or the admin's allowlist
(the airflow role's airflow_dag_repo_packages) names: pip runs as root in the stack's virtualenv, so a
repository cannot bring in a package nobody vetted. The requirements of every registered repository are
resolved together, with the stack's constraints, wheels only (no build runs code), in a dry run that
changes nothing: a conflict refuses the commit with pip's explanation, which names the package and the
constraint."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shlex

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?"
_SPEC = r"(?:===|==|!=|<=|>=|~=|<|>)\s*[A-Za-z0-9.*+!_-]{1,60}"
REQUIREMENT_RE = re.compile(
    r"^(?P<name>%s)\s*(?:\[\s*%s(?:\s*,\s*%s)*\s*\])?\s*(?:%s(?:\s*,\s*%s)*)?\s*(?:;[A-Za-z0-9_.'\" <>=!~()-]{1,200})?$"
    % (_NAME, _NAME, _NAME, _SPEC, _SPEC))
PIN_RE = re.compile(r"^(?P<name>%s)==[A-Za-z0-9.+!_-]{1,60}$" % _NAME)
# At most this many requirements per repository.
MAX_REQUIREMENTS = 100
UNREAD = "not read: only package requirements are (no option, file, URL or line continuation)"


class RequirementsError(Exception):
    def __init__(self, msg, findings=None):
        super(RequirementsError, self).__init__(msg)
        self.msg = msg
        self.findings = findings or []


def normalize(name):
    """A package name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirements(text):
    """([(line number, requirement)], [(line number, text, why not read)]) of a requirements file."""
    accepted, unread = [], []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if REQUIREMENT_RE.match(line) and not line.endswith("\\"):
            accepted.append((number, line))
        else:
            unread.append((number, "".join(c if c.isprintable() else "?" for c in line)[:200], UNREAD))
    if len(accepted) > MAX_REQUIREMENTS:
        raise RequirementsError("the requirements file has %d requirements; at most %d are read"
                                % (len(accepted), MAX_REQUIREMENTS))
    return accepted, unread


def check_requirement_list(values, field, pins=False):
    """The requirement lines (or name==version pins) a caller hands over again, checked as the file's were."""
    pattern = PIN_RE if pins else REQUIREMENT_RE
    if not isinstance(values, list) or len(values) > MAX_REQUIREMENTS * 10:
        raise RequirementsError("%s: give a list of at most %d requirements" % (field, MAX_REQUIREMENTS * 10))
    for value in values:
        if not isinstance(value, str) or not pattern.match(value):
            raise RequirementsError("%s: %r is not a %s" % (
                field, value, "package pin such as foo==1.2" if pins else "package requirement such as foo>=1.2"))
    return list(values)


def constraint_names(path):
    """The normalized names a local constraints file pins (an http(s) constraints URL: none known here)."""
    if not path or re.match(r"^https?://", path):
        return set()
    names = set()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = re.match(r"^\s*(%s)\s*(?:\[[^\]]*\])?\s*===?" % _NAME, line)
                if m:
                    names.add(normalize(m.group(1)))
    except (IOError, OSError) as e:
        raise RequirementsError("cannot read the stack's constraints %s: %s; converge the airflow role" % (path, e))
    return names


def disallowed(accepted, allowed, file_name):
    """Findings for the requirements whose package neither the constraints nor the allowlist names."""
    found = []
    for number, line in accepted:
        name = REQUIREMENT_RE.match(line).group("name")
        if normalize(name) not in allowed:
            found.append(dict(file=file_name, line=number, kind="requirement",
                              message="%s: %s is neither pinned by the stack's constraints nor listed in the airflow "
                                      "role's airflow_dag_repo_packages; add it there and converge the stack, or "
                                      "remove it from %s" % (line, name, file_name)))
    return found


def pip_conflict(output):
    """The lines of pip's answer that say what failed (the conflict, the package, the constraint)."""
    keep, in_cause = [], False
    for line in output.splitlines():
        text = line.strip()
        if text.startswith("ERROR:"):
            keep.append(text)
            in_cause = False
        elif text.startswith("The conflict is caused by"):
            keep.append(text)
            in_cause = True
        elif in_cause and text and (text.startswith("The user requested") or " depends on " in text):
            keep.append(text)
        elif not text:
            in_cause = False
    return " | ".join(keep)[:2000] or output.strip()[-1000:]


def resolve(module, python, requirements, constraints, pip_args, stage, pins=()):
    """The packages pip would add to the virtualenv of `python` for `requirements` (name==version pins),
    resolved with the constraints and `pins` (the versions installed for other repositories), wheels only,
    in a dry run as root; RequirementsError with pip's explanation when they cannot be installed together."""
    if not requirements:
        return []
    report = os.path.join(stage, "pip-report.json")
    argv = [python, "-m", "pip", "install", "--dry-run", "--disable-pip-version-check", "--no-input",
            "--only-binary", ":all:", "--report", report]
    if constraints:
        argv += ["--constraint", constraints]
    if pins:
        pin_file = os.path.join(stage, "pins.txt")
        with open(pin_file, "w") as f:
            f.write("".join(pin + "\n" for pin in pins))
        argv += ["--constraint", pin_file]
    argv += shlex.split(pip_args or "") + list(requirements)
    rc, out, err = module.run_command(argv, cwd=stage)
    if rc != 0:
        raise RequirementsError("the requirements cannot be installed with the stack's constraints: %s"
                                % pip_conflict(out + "\n" + err))
    try:
        with open(report) as f:
            installs = json.load(f).get("install", [])
        return sorted("%s==%s" % (normalize(i["metadata"]["name"]), i["metadata"]["version"]) for i in installs)
    except (IOError, OSError, ValueError, KeyError, TypeError) as e:
        raise RequirementsError("pip's report of the resolution could not be read: %s" % e)


def allowed_names(runtime):
    """The packages a repository may ask for on this host: those the stack's constraints pin and the airflow
    role's airflow_dag_repo_packages (both from runtime.json)."""
    extra = runtime.get("dag_repo_packages") or []
    return constraint_names(runtime.get("constraints")) | set(normalize(n) for n in extra if isinstance(n, str))


def registry_requirements(registry, allowed, skip=None):
    """(requirement lines, package pins, names of the entries with a line dropped) of the registered
    repositories but `skip`. The registry is an Airflow variable that its editors can change: a line that is
    not a package requirement, or whose package is not allowed, is dropped, and a pin must be name==version
    (pins only ever constrain the versions pip picks; they never add a package)."""
    lines, pins, dropped = set(), set(), set()
    for name, entry in sorted((registry or {}).items()):
        if name == skip or not isinstance(entry, dict):
            continue
        for line in entry.get("requirements") or []:
            m = REQUIREMENT_RE.match(line) if isinstance(line, str) else None
            if m and normalize(m.group("name")) in allowed:
                lines.add(line)
            else:
                dropped.add(name)
        for pin in entry.get("packages") or []:
            if isinstance(pin, str) and PIN_RE.match(pin):
                pins.add(pin)
            else:
                dropped.add(name)
    return sorted(lines), sorted(pins), sorted(dropped)
