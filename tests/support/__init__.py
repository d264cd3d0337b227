"""Helpers shared by test files, one module per subject; the fixtures are in tests/conftest.py."""
