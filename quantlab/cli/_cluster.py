"""``--cluster`` and ``--resume``: where sweep chunks run, and which unfinished run to finish."""

from __future__ import annotations

import click

cluster_option = click.option(
    "--cluster",
    default=None,
    envvar="QUANTLAB_CLUSTER",
    help="Run sweep chunks on Dask: local:N (N worker processes) or tcp://HOST:8786 "
    "(a running `dask scheduler`; $QUANTLAB_CLUSTER). Default: this process.",
)

resume_option = click.option(
    "--resume",
    "resume",
    default=None,
    metavar="RUN_ID",
    help="Finish an interrupted chunked run, reusing its checkpointed chunks (a rerun of the "
    "same command with --cluster resumes automatically).",
)
