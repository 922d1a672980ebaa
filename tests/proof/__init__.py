"""proof tests."""
