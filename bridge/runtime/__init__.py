"""The live runtime: a ``Runner`` that owns a broker session, a decision path and periodic
tasks over one explicit state object (``state.RunnerState``), composed rather than inherited."""
