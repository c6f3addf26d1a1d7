"""The fault-injection suite of docs/fault-injection.md (`make chaos`): a black-box harness that drives the
services over HTTP, Kafka and process signals. Only its pure parts have unit tests (test_*.py);
the harness itself runs as `python -m tests.chaos`, never under pytest."""
