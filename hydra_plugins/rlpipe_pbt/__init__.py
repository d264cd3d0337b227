"""rlpipe's Hydra plugins: the population-based-training sweeper and the grid sweeper (logic in
`rlpipe.cli.pbt_sweeper` and `rlpipe.cli.grid_sweeper`)."""
