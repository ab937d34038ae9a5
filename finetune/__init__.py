"""finetune: see the module docstrings."""
