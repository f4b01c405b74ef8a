"""Closed-model attacks. They see a query oracle only: never a model, a parameter or a gradient."""
