"""The pure core: matching rules and profile operations on an identity book.

The only copy of the rules: the stream applies them to the part of a book
`adapters/book_store.py` loads; the table in `tests/rule_table.py` drives them in memory (a
unit test) and through the store on a real Redis (an integration test).
"""

from __future__ import annotations

from cohort_shared.schemas import CohortChangesAccepted, Message

from .book import Book
from .effects import Applied, Clock
from .identity_ops import apply_identity_request
from .matching import resolve_cohort_changes


def apply_record(book: Book, message: Message, clock: Clock) -> Applied:
    """Apply one input record (cohort.changes or identity.events) to its workspace's book."""
    if isinstance(message, CohortChangesAccepted):
        return resolve_cohort_changes(book, message, clock)
    return apply_identity_request(book, message, clock)  # type: ignore[arg-type]
