"""Why an operator request is refused: an HTTP status and a message naming the field.
Messages never echo a submitted value (it may be a URL with credentials in it)."""

from __future__ import annotations


class RequestRejected(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(RequestRejected):
    status = 400


class NotFound(RequestRejected):
    status = 404


class Unavailable(RequestRejected):
    status = 503
