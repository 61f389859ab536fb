"""Every model, imported here so that ``Base.metadata`` (and Alembic) sees the whole schema."""
from .case import Case, CaseCounter, Step
from .definition import ProcessDefinition
from .event import Event
from .idempotency import IdempotentResponse
from .timing import CalendarDay, Notification, Suspension, Timer
from .user import ApiToken, User

__all__ = [
    "ApiToken", "CalendarDay", "Case", "CaseCounter", "Event", "IdempotentResponse", "Notification",
    "ProcessDefinition", "Step", "Suspension", "Timer", "User",
]
