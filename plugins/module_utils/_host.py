# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE: this module is internal to the qubinode.airflow collection. Its API may change
# without notice; do not import it from other collections.
"""The Airflow services of a host and how they are restarted, shared by the modules that write
settings files the services read (bundles.env, orchestrator.env), and how Airflow's Python is run
on the host. Both depend on the runtime the airflow role deployed: systemd units over a virtualenv
(native), or containers of the host's compose project (podman), described by the role in
runtime.json next to airflow.cfg."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shlex
import subprocess

# Every unit that reads airflow.cfg and the settings files; a host has only some of them
# (a Temporal worker host has just the worker).
AIRFLOW_UNITS = ("airflow-dag-processor", "airflow-scheduler", "airflow-triggerer", "airflow-api-server",
                 "airflow-temporal-worker")
UNIT_DIR = "/etc/systemd/system"
CONFIG_DIR = "/etc/airflow"
RUNTIME_FILE = "runtime.json"


def read_runtime(config_dir=CONFIG_DIR):
    """The runtime description the airflow role wrote; native when there is none."""
    try:
        with open(os.path.join(config_dir or CONFIG_DIR, RUNTIME_FILE)) as f:
            runtime = json.load(f)
    except (OSError, ValueError):
        return dict(runtime="native")
    return runtime if isinstance(runtime, dict) and runtime.get("runtime") else dict(runtime="native")


def installed_units(names, config_dir=CONFIG_DIR):
    """Those of `names` that run on this host: installed units, or containers of the compose project
    (named as the units)."""
    runtime = read_runtime(config_dir)
    if runtime["runtime"] == "podman":
        return [u for u in names if u in runtime.get("containers", [])]
    return [u for u in names if os.path.exists(os.path.join(UNIT_DIR, "%s.service" % u))]


def service_manager(config_dir=CONFIG_DIR):
    """The command that stops, starts and restarts the services: systemctl, or podman for containers."""
    return "podman" if read_runtime(config_dir)["runtime"] == "podman" else "systemctl"


# The grace period of a container, in seconds: the podman role writes it on each from its service's definition.
STOP_TIMEOUT_LABEL = "io.qubinode.airflow.stop-timeout"


def manager_commands(module, verb, units, config_dir=CONFIG_DIR):
    """The commands that VERB (start, stop, restart) `units`: `systemctl VERB UNITS...`, or for the podman runtime
    `podman VERB CONTAINERS...`, a stop or restart giving each container its grace period (one command per period
    in use): without `--time` podman kills after 10 s, a draining scheduler's running tasks with it."""
    units = list(units)
    if service_manager(config_dir) != "podman":
        return [["systemctl", verb] + units]
    if verb not in ("stop", "restart"):
        return [["podman", verb] + units]
    # podman's JSON, not a --format line per container: a label is any text, and one holding a newline and another
    # container's name would give that container its time. A container that does not exist is left out (podman says
    # so on stderr); its stop then fails as it would. A label that is not whole seconds is not used.
    _rc, out, _e = run(["podman", "container", "inspect"] + units)
    try:
        found = json.loads(out or "[]")
    except ValueError:
        found = []
    timeouts = {}
    for container in found if isinstance(found, list) else []:
        if not isinstance(container, dict):
            continue
        timeout = ((container.get("Config") or {}).get("Labels") or {}).get(STOP_TIMEOUT_LABEL)
        if container.get("Name") in units and isinstance(timeout, str) and re.match(r"[0-9]{1,6}\Z", timeout):
            timeouts.setdefault(container["Name"], timeout)
    groups = {}
    for unit in units:
        groups.setdefault(timeouts.get(unit), []).append(unit)
    return [["podman", verb] + (["--time", timeout] if timeout else []) + names for timeout, names in groups.items()]


def systemctl(module, verb, units, error, config_dir=CONFIG_DIR):
    """`systemctl VERB UNITS...` (`podman VERB CONTAINERS...` for the podman runtime, see manager_commands);
    raises `error` (the caller's exception class) with the answer."""
    for argv in manager_commands(module, verb, units, config_dir) if units else []:
        rc, _o, err = module.run_command(argv)
        if rc != 0:
            raise error("%s failed: %s" % (" ".join(argv), err.strip()))


def run(args, cwd=None, environ_update=None):
    """(rc, stdout, stderr) of the command `args` (a list), with `environ_update` added to this process's
    environment: for every command whose output is read. AnsibleModule.run_command can return a command's
    exit code without the output it wrote last: its read loop ends when a one-second wait for output
    times out and the command has exited by the time it looks, without reading what the command wrote in
    between (ansible/ansible issue 51393). Under load that lost the one JSON line a check prints before it
    exits. This reads both pipes to their end."""
    env = dict(os.environ)
    env.update(environ_update or {})
    if env.get("PYTHONPATH"):
        # What AnsiballZ put there is this module's own code, not the command's.
        paths = [p for p in env["PYTHONPATH"].split(":")
                 if p and not p.endswith("/ansible_modlib.zip") and not p.endswith("/debug_dir")]
        if paths:
            env["PYTHONPATH"] = ":".join(paths)
        else:
            del env["PYTHONPATH"]
    try:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, close_fds=True)
    except OSError as e:
        return 127, "", "cannot run %s: %s" % (args[0], e)
    out, err = proc.communicate()
    return (proc.returncode, out.decode("utf-8", errors="replace"), err.decode("utf-8", errors="replace"))


def airflow_python(venv, run_as, config_dir=CONFIG_DIR, env=None, mounts=()):
    """(argv, environ_update) that run Airflow's Python with `env` set: the virtualenv's as `run_as`,
    or, for the podman runtime, a one-off container of the services' image, user and volumes, with
    the host paths of `mounts` mounted at the same place."""
    env = dict(env or {})
    runtime = read_runtime(config_dir)
    if runtime["runtime"] == "podman":
        argv = ["podman", "run", "--rm", "--network", "host", "--user", runtime["user"],
                "--volume", "/etc/passwd:/etc/passwd:ro", "--volume", "/etc/group:/etc/group:ro"]
        for volume in list(runtime.get("volumes", [])) + ["%s:%s" % (m, m) for m in mounts]:
            argv += ["--volume", volume]
        for name in sorted(env):
            argv += ["--env", "%s=%s" % (name, env[name])]
        return argv + ["--entrypoint", "python", runtime["image"]], {}
    argv = [os.path.join(venv, "bin", "python")]
    if run_as and os.geteuid() == 0:
        argv = ["runuser", "-u", run_as, "--"] + argv
    return argv, env


PROC = "/proc"
BUSY_WORKER = b"airflow worker -- LocalExecutor"
# Units this run of a module restarts on their own, unwaited (see restart_with_cleanup).
deferred = set()


def scheduler_busy(proc=None):
    """Whether a scheduler on this host runs task instances now: one of its LocalExecutor workers (their
    process titles, also those of a container's) is not idle."""
    proc = proc or PROC
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        try:
            with open(os.path.join(proc, pid, "cmdline"), "rb") as f:
                title = f.read().replace(b"\0", b" ").strip()
        except OSError:
            continue
        if title.startswith(BUSY_WORKER) and b"<idle>" not in title:
            return True
    return False


def restart_with_cleanup(module, units, paths, error, config_dir=CONFIG_DIR, owner=None):
    """Stop `units`, remove `paths`, start `units` again, as one transient systemd service.

    `paths` lie in trees the Airflow user can write (bundle storage under airflow_home), so they are
    removed as `owner`, never as root: a link planted in them then reaches only what that user could
    remove anyway.

    systemd finishes it even if the caller dies half-way: an Airflow task that registers a
    repository through this collection restarts the scheduler it runs under, which ends the task,
    its ansible-playbook and, over SSH, this module. Run from the module itself, the units would
    stay stopped.

    A scheduler stops only once the task instances it runs have finished (airflow_drain_timeout), and
    the caller may be one of them: while it runs any, it restarts on its own, after the others and
    without being waited for, so that the caller can end and the scheduler's drain with it."""
    units = list(units)
    later = []
    if "airflow-scheduler" in units and scheduler_busy():
        units.remove("airflow-scheduler")
        later = ["airflow-scheduler"]
        deferred.update(later)
    remove = ["rm", "-rf", "--"] + list(paths)
    if owner and os.geteuid() == 0:
        remove = ["runuser", "-u", owner, "--"] + remove
    name = "qubinode-airflow-restart-%d" % os.getpid()
    if not units:
        if paths:
            module.run_command(remove)
    else:
        script = "; ".join(" ".join(shlex.quote(a) for a in argv) for argv in
                           manager_commands(module, "stop", units, config_dir) + ([remove] if paths else [])
                           + manager_commands(module, "start", units, config_dir))
        rc, _o, err = module.run_command(
            ["systemd-run", "--unit", name, "--description", "qubinode.airflow: restart after a DAG bundle change",
             "--collect", "--wait", "--quiet", "--", "/bin/sh", "-c", script])
        if rc != 0:
            raise error("restarting %s failed (%s); see journalctl -u %s.service"
                        % (" ".join(units), err.strip() or "exit %d" % rc, name))
    if later:
        rc, _o, err = module.run_command(
            ["systemd-run", "--unit", name + "-scheduler", "--description",
             "qubinode.airflow: restart the scheduler after a DAG bundle change, once its running tasks end",
             "--collect", "--quiet", "--"] + manager_commands(module, "restart", later, config_dir)[0])
        if rc != 0:
            raise error("restarting %s failed (%s); see journalctl -u %s-scheduler.service"
                        % (" ".join(later), err.strip() or "exit %d" % rc, name))
