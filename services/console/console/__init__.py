"""The operator console: server-rendered pages over the services' operator APIs."""
