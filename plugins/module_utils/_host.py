# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE: this module is internal to the qubinode.airflow collection. Its API may change
# without notice; do not import it from other collections.
"""The Airflow units of a host and how they are restarted, shared by the modules that write
settings files the units read (bundles.env, orchestrator.env)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shlex
import shutil

# Every unit that reads airflow.cfg and the settings files; a host has only some of them
# (a Temporal worker host has just the worker).
AIRFLOW_UNITS = ("airflow-dag-processor", "airflow-scheduler", "airflow-triggerer", "airflow-api-server",
                 "airflow-temporal-worker")
UNIT_DIR = "/etc/systemd/system"


def installed_units(names):
    """Those of `names` that are installed on this host."""
    return [u for u in names if os.path.exists(os.path.join(UNIT_DIR, "%s.service" % u))]


def systemctl(module, verb, units, error):
    """`systemctl VERB UNITS...`; raises `error` (the caller's exception class) with systemd's answer."""
    if units:
        rc, _o, err = module.run_command(["systemctl", verb] + list(units))
        if rc != 0:
            raise error("systemctl %s %s failed: %s" % (verb, " ".join(units), err.strip()))


def restart_with_cleanup(module, units, paths, error):
    """Stop `units`, remove `paths`, start `units` again, as one transient systemd service.

    systemd finishes it even if the caller dies half-way: an Airflow task that registers a
    repository through this collection restarts the scheduler it runs under, which ends the task,
    its ansible-playbook and, over SSH, this module. Run from the module itself, the units would
    stay stopped."""
    if not units:
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)
        return
    clean = "rm -rf -- %s; " % " ".join(shlex.quote(p) for p in paths) if paths else ""
    script = "systemctl stop %s; %ssystemctl start %s" % (" ".join(units), clean, " ".join(units))
    name = "qubinode-airflow-restart-%d" % os.getpid()
    rc, _o, err = module.run_command(
        ["systemd-run", "--unit", name, "--description", "qubinode.airflow: restart after a DAG bundle change",
         "--collect", "--wait", "--quiet", "--", "/bin/sh", "-c", script])
    if rc != 0:
        raise error("restarting %s failed (%s); see journalctl -u %s.service"
                    % (" ".join(units), err.strip() or "exit %d" % rc, name))
