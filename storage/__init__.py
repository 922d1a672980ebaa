"""Storage: the schema, the async engine/session factory, migrations and the query functions handlers use."""
