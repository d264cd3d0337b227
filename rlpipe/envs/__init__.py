"""Trading environments: one batched market simulator, viewed as a gymnasium env or an SB3 VecEnv.

Import from the modules: the package re-exports nothing, so that importing one light module
(`rlpipe.envs.layout`, `rlpipe.envs.sim_config`) does not compile the simulator's kernels (numba)
or load torch.
"""
