"""The local MLflow tracking server of `make server`: PostgreSQL from the `pgserver` wheel
(`postgres.py`) and `mlflow server --serve-artifacts` on top of it (`tracking_server.py`), started,
stopped and reported on by `python -m rlpipe.server start|stop|status` (`__main__.py`).

No MLflow import and no Hydra: it runs `mlflow server` as a process of its own and talks to it over
HTTP, so it stands beside `rlpipe.tracking` (the client side of any store) rather than inside it.
"""
