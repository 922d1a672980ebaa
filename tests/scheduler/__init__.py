"""scheduler tests."""
