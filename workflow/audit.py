"""The audit trail: append an event per action, hash-chained per case, and verify the chains.

Each event's hash is SHA-256 over its own content and the previous event's hash for the same case,
so changing, removing or reordering any stored event breaks every hash after it. Events are never
updated or deleted: the ORM refuses it here, and database triggers refuse it underneath.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import event as sa_event, func, select
from sqlalchemy.orm import Session

from .actors import Actor
from .clock import utcnow
from .models import Case, Event

GENESIS = "0" * 64


def canonical(payload) -> dict:
    """Return ``payload`` as JSON-native values, exactly as it reads back from the database."""
    return json.loads(json.dumps(payload or {}, ensure_ascii=False, default=str))


def event_hash(event: Event, case_no: str) -> str:
    """SHA-256 over the event's content and its predecessor's hash."""
    content = {
        "case_no": case_no,
        "seq": event.seq,
        "at": event.at.isoformat(timespec="microseconds"),
        "actor": event.actor,
        "actor_id": event.actor_id,
        "role": event.role,
        "department": event.department,
        "action": event.action,
        "step": event.step,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "payload": event.payload,
        "prev_hash": event.prev_hash,
    }
    data = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def record(session: Session, case: Case, actor: Actor, action: str, *, step: str | None = None,
           from_state=None, to_state=None, payload: dict | None = None, at: datetime | None = None) -> Event:
    """Append one event to the case's chain; the caller's flush and commit write it.

    The caller holds the case's row lock (or its version check) for the transaction, so the chain's
    head read here stays the head until the commit; it is remembered for the rest of the transaction.
    """
    if case.id is None:
        session.flush()
    heads = session.info.setdefault("chain_heads", {})
    if case.id not in heads:
        last = session.execute(
            select(Event.seq, Event.hash).where(Event.case_id == case.id).order_by(Event.seq.desc()).limit(1)
        ).first()
        heads[case.id] = (last.seq, last.hash) if last else (0, GENESIS)
    seq, prev_hash = heads[case.id]
    evt = Event(
        case_id=case.id,
        seq=seq + 1,
        at=(at or utcnow()).astimezone(timezone.utc),  # hashed as it will read back: in UTC
        actor=actor.username,
        actor_id=actor.user_id,
        role=actor.role.value if actor.role else None,
        department=actor.department,
        action=action,
        step=step,
        from_state=getattr(from_state, "value", from_state),
        to_state=getattr(to_state, "value", to_state),
        payload=canonical(payload),
        prev_hash=prev_hash,
    )
    evt.hash = event_hash(evt, case.case_no)
    heads[case.id] = (evt.seq, evt.hash)
    case.chain_seq, case.chain_hash = evt.seq, evt.hash
    session.add(evt)
    return evt


def prime_heads(session: Session, case_ids) -> None:
    """Read the chain heads of many cases in one query (for a batch that appends to each)."""
    heads = session.info.setdefault("chain_heads", {})
    wanted = [i for i in case_ids if i not in heads]
    if not wanted:
        return
    last = (select(Event.case_id, func.max(Event.seq).label("seq")).where(Event.case_id.in_(wanted))
            .group_by(Event.case_id).subquery())
    rows = session.execute(select(Event.case_id, Event.seq, Event.hash)
                           .join(last, (Event.case_id == last.c.case_id) & (Event.seq == last.c.seq)))
    heads.update({row.case_id: (row.seq, row.hash) for row in rows})
    heads.update({i: (0, GENESIS) for i in wanted if i not in heads})


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_chain_heads(session: Session, _transaction) -> None:
    # Another transaction may extend a chain once this one ends (or a rollback undid our events).
    session.info.pop("chain_heads", None)


@dataclass(frozen=True)
class BrokenLink:
    case_no: str
    event_id: int
    seq: int
    reason: str


def verify(session: Session, case_id: int | None = None) -> list[BrokenLink]:
    """Check every chain (or one case's); return the first broken event of each broken chain.

    A chain must link event to event from the genesis hash, and end where the case says its chain
    ends (``cases.chain_seq``/``chain_hash``), so that removing the last events shows too.
    """
    query = (
        select(Event, Case.case_no)
        .join(Case, Case.id == Event.case_id)
        .order_by(Event.case_id, Event.seq)
        # Read what is stored now, not objects this session may hold from earlier.
        .execution_options(yield_per=2000, populate_existing=True)
    )
    heads = select(Case.id, Case.case_no, Case.chain_seq, Case.chain_hash)
    if case_id is not None:
        query = query.where(Event.case_id == case_id)
        heads = heads.where(Case.id == case_id)
    broken: dict[int, BrokenLink] = {}
    last: dict[int, tuple[int, str]] = {}
    for evt, case_no in session.execute(query):
        if evt.case_id in broken:
            continue
        seq, prev_hash = last.get(evt.case_id, (0, GENESIS))
        reason = None
        if evt.seq != seq + 1:
            reason = f"expected event {seq + 1} of the chain, found {evt.seq}"
        elif evt.prev_hash != prev_hash:
            reason = "does not link to the previous event's hash"
        elif event_hash(evt, case_no) != evt.hash:
            reason = "content does not match its hash"
        if reason:
            broken[evt.case_id] = BrokenLink(case_no, evt.id, evt.seq, reason)
        last[evt.case_id] = (evt.seq, evt.hash)
    for cid, case_no, chain_seq, chain_hash in session.execute(heads):
        seq = last.get(cid, (0, GENESIS))
        if cid not in broken and seq != (chain_seq, chain_hash):
            broken[cid] = BrokenLink(case_no, 0, seq[0] + 1,
                                     f"the chain ends at event {seq[0]} but the case records {chain_seq}")
    return sorted(broken.values(), key=lambda link: link.case_no)


@sa_event.listens_for(Session, "before_flush")
def _events_are_append_only(session: Session, _flush_context, _instances) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, Event) and (obj in session.deleted or session.is_modified(obj)):
            raise RuntimeError("audit events are append-only")
