"""The Mixpanel-style producer: pure rules (diff, batching, backoff, snapshots) and its HTTP adapter."""
