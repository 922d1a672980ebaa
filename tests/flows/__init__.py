"""flows tests."""
