"""Crash storage: where raw crashes come from and where processed crashes go."""
