"""Repository tools that are part of no service: generating the contract documents in docs/."""
