"""Use cases with their stores injected. No HTTP here."""
