"""rlpipe's Hydra plugins: the population-based-training sweeper (logic in `rlpipe.cli.pbt_sweeper`)."""
