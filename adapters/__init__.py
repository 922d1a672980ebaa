"""Adapters: the only code that knows a messenger exists. One package per platform, one interface."""
