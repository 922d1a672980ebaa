"""Flows: each module holds a ``router`` and the domain logic for one rhythm. No HTTP, no platform imports."""
