"""The EvoLink edge: the HTTP client (auth, typed errors, retries, tasks) and uploads."""
