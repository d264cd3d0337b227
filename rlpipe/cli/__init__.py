"""The command-line layer, the only code that knows Hydra: config schemas, composition into typed
jobs, the sweep callback and the terminal table. The entry modules `rlpipe.train`,
`rlpipe.evaluate` and `rlpipe.promote` hold a few lines each and call into this package."""
