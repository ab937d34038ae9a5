"""index: see the module docstrings."""
