"""The ledger: the SQLite store (source of truth), its named read queries, the lock that
keeps one runner per ledger, and backups."""
