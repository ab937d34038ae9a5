"""agent: see the module docstrings."""
