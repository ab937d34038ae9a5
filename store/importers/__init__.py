"""Importers of outside data into the store: the tau2 retail db, product catalogs, reviews and transaction exports."""
