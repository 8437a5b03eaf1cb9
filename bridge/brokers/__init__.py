"""Brokers: the protocol every broker implements, the IB broker (the only module that
imports ``ib_async``), the simulated broker for replays, and the factory that picks one."""
