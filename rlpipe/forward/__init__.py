"""Forward in time: a policy traded bar by bar on bars it has never seen (paper trading)."""
