"""Processing rules: each one small; a failing rule becomes a processor note."""
