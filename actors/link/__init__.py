"""Links: the supervised transport every adapter reuses."""
