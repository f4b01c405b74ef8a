"""Attack campaigns: which sources each attack runs on, running them through the query oracle (one launcher), and
the on-disk store of finished examples that the data modules read. Imports ``attacks`` and ``core`` only; the
target system and the attacker's prior are named by dotted path and built in their own processes."""
