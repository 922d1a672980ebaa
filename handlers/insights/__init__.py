"""Insights: the monthly department brief, weekly threshold alerts, and early warnings about a person."""
