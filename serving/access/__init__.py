"""Who may call what: API keys, their store, cache and pepper, the key check, rate limits,
and the keys CLI."""
