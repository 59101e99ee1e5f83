# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""`airflow temporal ...`: the Temporal worker and the reachability check as Airflow CLI commands."""

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
        )
    ]
