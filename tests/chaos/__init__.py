"""Randomized fault-injection suite for the live bridge (issue 9).

Each schedule is drawn from one integer seed (:mod:`tests.chaos.schedule`), run against the
fake IB Gateway with ``bridge run --paper`` as real subprocesses (:mod:`tests.chaos.session`),
then judged by six named invariants (:mod:`tests.chaos.invariants`). Replay one schedule with
``python -m tests.chaos --seed N``; run many with ``make chaos N=500`` (see docs/bridge.md).
"""
