"""The loader path that policies logged before `rlpipe.policy` existed record in their MLmodel.

Their MLmodel reads `loader_module: rlpipe.tracking.served_policy`, and that file cannot be
rewritten: it is one of the files of the sha256 manifest the registry records, so a policy whose
MLmodel changed is refused. MLflow imports this module for them and calls `_load_pyfunc`, which
is `rlpipe.policy.pyfunc`'s (the same checks, the same model). Policies logged now name
`rlpipe.policy.pyfunc` (`rlpipe.policy.logged.LOADER`); nothing in rlpipe imports this module.
It can go once no store holds a policy logged before 2026-12.
"""

from rlpipe.policy.pyfunc import _load_pyfunc

__all__ = ["_load_pyfunc"]
