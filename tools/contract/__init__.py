"""The machine-readable contract in docs/: each service's OpenAPI document, exported from its
FastAPI app, and the AsyncAPI document of the topics, generated from the message schemas.
`python -m tools.contract write` regenerates them (`make docs`); `check` fails if a committed
file differs from what the code produces (run by `make test`)."""
