"""Errors the engine raises; the web layer maps them to HTTP in ``api/errors.py``."""


class WorkflowError(Exception):
    """Base class: a refusal the caller can show to a person."""

    def __init__(self, detail: str, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(WorkflowError):
    """The case, step or user does not exist."""


class Unauthenticated(WorkflowError):
    """Nobody (or an unknown or revoked credential) is asking."""


class Forbidden(WorkflowError):
    """The actor's role or department may not do this."""


class IllegalAction(WorkflowError):
    """The action is not allowed in the current state; ``state`` names that state."""

    def __init__(self, detail: str, state: str | None = None, **extra):
        super().__init__(detail, state=state, **extra)
        self.state = state


class Conflict(WorkflowError):
    """Someone else changed the case first (lost the optimistic-locking race)."""


class PreconditionFailed(WorkflowError):
    """The caller's ``If-Match`` version is not the case's current version."""


class Invalid(WorkflowError):
    """Input failed validation; ``errors`` maps each bad field to its messages."""

    def __init__(self, errors: dict[str, list[str]], detail: str = "The request has invalid fields."):
        super().__init__(detail, errors=errors)
        self.errors = errors


class DefinitionError(WorkflowError):
    """A process definition is malformed (cycle, unknown department, bad target...)."""
