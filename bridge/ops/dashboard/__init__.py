"""``bridge dashboard``: a web page over the ledger, in its own process (see ``server.py``)."""
