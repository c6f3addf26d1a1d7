"""Offline validation of the deploy files: `make validate-deploy` (python -m deploy.validate)."""
