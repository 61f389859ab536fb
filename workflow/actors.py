"""Who is acting: a plain value the operations receive instead of a request's user."""
from __future__ import annotations

import enum
from dataclasses import dataclass

SERVICE_WINDOW = "service_window"


class Role(str, enum.Enum):
    clerk = "clerk"
    supervisor = "supervisor"
    admin = "admin"


@dataclass(frozen=True)
class Actor:
    """A user (or the system) performing an action, as the audit trail records it."""

    user_id: int | None
    username: str
    role: Role | None
    department: str | None

    @property
    def is_window(self) -> bool:
        """Staff of the comprehensive window (综合窗口), clerk or supervisor."""
        return self.department == SERVICE_WINDOW and self.role in (Role.clerk, Role.supervisor)

    def works_for(self, department: str) -> bool:
        """Clerk or supervisor of ``department``."""
        return self.department == department and self.role in (Role.clerk, Role.supervisor)

    def supervises(self, department: str) -> bool:
        return self.department == department and self.role is Role.supervisor


SYSTEM = Actor(user_id=None, username="system", role=None, department=None)
