"""rlpipe: train, evaluate, gate and register RL trading agents as repeatable experiments."""

__version__ = "0.1.0"
