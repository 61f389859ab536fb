"""What people and the system do to cases: each function validates, fires the machine, audits, flushes.

Operations take the ``session`` and the ``actor`` as arguments (the CLI and the timer worker have no
request) and never commit: their caller — the request, the CLI command, the timer job — owns the
transaction and commits once, or rolls back. ``transitions`` does not undo a state change when a
later step fails; the database transaction does.
"""
from .cases import (accept_case, deliver_case, get_case, reject_case, resume_case, submit_case, suspend_case,
                    withdraw_case)
from .notifications import mark_read
from .steps import claim_step, complete_step, reassign_step, refuse_step, release_step

__all__ = [
    "accept_case", "claim_step", "complete_step", "deliver_case", "get_case", "mark_read", "reassign_step",
    "refuse_step", "reject_case", "release_step", "resume_case", "submit_case", "suspend_case", "withdraw_case",
]
