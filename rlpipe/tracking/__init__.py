"""The only package that imports mlflow: store, runs, artifacts, pyfunc policy, registry."""
