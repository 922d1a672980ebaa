"""perfloop: the wiring — configuration, HTTP service, dispatcher, outbox and CLI."""
