"""Results: HR's promotion and high-potential flags (``/flag``), which the results export carries."""
