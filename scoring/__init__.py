"""Scoring whole customer files with a registered model, and the summary of what was scored."""
