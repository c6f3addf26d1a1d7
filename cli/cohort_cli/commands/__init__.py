"""One module per command group; each only parses, calls and prints."""
