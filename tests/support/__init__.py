"""Shared test support: factories, flow helpers, browser and kill-test harnesses (no tests here)."""
