# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Airflow CLI commands: `airflow temporal ...` (the Temporal worker and the reachability check) and
`airflow dag-repos migration-patch` (an Airflow 3 migration patch for a repository of DAGs)."""

from __future__ import annotations


def _worker(args):
    from qubinode_airflow.temporal.worker import main

    return main(["--concurrency", str(args.concurrency)] if args.concurrency else [])


def _check(args):
    import sys

    from qubinode_airflow.temporal.check import main
    from qubinode_airflow.temporal.codec import Settings

    settings = Settings.from_airflow()
    sys.exit(main([args.address or settings.address, args.namespace or settings.namespace]))


def _migration_patch(args):
    import sys

    from qubinode_airflow.repos.migrate import main

    sys.exit(main(args.path, args.output))


def get_cli_commands():
    from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand

    return [
        GroupCommand(
            name="temporal",
            help="Run task attempts from Temporal ([qubinode_temporal] settings)",
            subcommands=(
                ActionCommand(name="worker", help="Start a Temporal worker for this deployment's task attempts",
                              func=_worker, args=(Arg(("--concurrency",), type=int, help="attempts at once"),)),
                ActionCommand(name="check", help="Check that Temporal answers and the namespace exists",
                              func=_check, args=(Arg(("--address",), help="host:port"),
                                                 Arg(("--namespace",), help="namespace"))),
            ),
        ),
        GroupCommand(
            name="dag-repos",
            help="Git repositories of DAGs",
            subcommands=(
                ActionCommand(name="migration-patch",
                              help="Write a patch with ruff's Airflow 3 fixes for a checkout of a repository, and "
                                   "list what they cannot fix; the checkout is not changed",
                              func=_migration_patch,
                              args=(Arg(("path",), help="the checkout of the repository"),
                                    Arg(("--output", "-o"), help="write the patch to this file (default: stdout)"))),
            ),
        ),
    ]
