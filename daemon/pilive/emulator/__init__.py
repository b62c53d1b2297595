"""A local Live API server for tests, demos and hardware bring-up."""
