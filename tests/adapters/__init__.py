"""adapters tests."""
