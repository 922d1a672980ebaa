"""Platform-neutral cards: the model, typed button payloads, the message catalogue and per-flow builders."""
