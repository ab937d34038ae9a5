"""ui: see the module docstrings."""
