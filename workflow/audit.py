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
from types import SimpleNamespace

from sqlalchemy import event as sa_event, func, insert, select
from sqlalchemy.orm import Session

from .actors import Actor
from .clock import utcnow
from .models import Case, Event

GENESIS = "0" * 64
_PENDING = "pending_events"  # rows record() made, for the next flush to insert


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


def _head(session: Session, case_id: int) -> tuple[int, str]:
    """The (seq, hash) the case's next event follows, remembered for the rest of the transaction."""
    heads = session.info.setdefault("chain_heads", {})
    if case_id not in heads:
        # The pending changes (the case's UPDATE) go first: on SQLite that takes the database's write
        # lock, so the head read next cannot move before the commit.
        session.flush()
        last = session.execute(
            select(Event.seq, Event.hash).where(Event.case_id == case_id).order_by(Event.seq.desc()).limit(1)
        ).first()
        heads[case_id] = (last.seq, last.hash) if last else (0, GENESIS)
    return heads[case_id]


def heads_of_locked(session: Session, heads) -> None:
    """Take the chain heads, ``(case id, chain_seq, chain_hash)``, of case rows just read under their lock.

    Every event is written with its case's head (``cases.chain_seq``, ``chain_hash``) in the same
    transaction, so a row read under its lock (``FOR UPDATE`` on PostgreSQL, the write lock on
    SQLite) holds its chain's head and nobody can move it before the commit: the chain needs no
    query. Without such a lock the head is read after the transaction's first write (``_head``).
    """
    known = session.info.setdefault("chain_heads", {})
    for case_id, seq, head in heads:
        known[case_id] = (seq, head)


def new_chain(session: Session, case: Case) -> None:
    """A case just inserted has no events yet: its chain starts at the genesis hash, no query needed."""
    session.info.setdefault("chain_heads", {})[case.id] = (0, GENESIS)


def _row(case_id: int, case_no: str, actor: Actor, action: str, seq: int, prev_hash: str, *, step: str | None,
         from_state, to_state, payload: dict | None, at: datetime | None) -> dict:
    row = {
        "case_id": case_id,
        "seq": seq,
        "at": (at or utcnow()).astimezone(timezone.utc),  # hashed as it will read back: in UTC
        "actor": actor.username,
        "actor_id": actor.user_id,
        "role": actor.role.value if actor.role else None,
        "department": actor.department,
        "action": action,
        "step": step,
        "from_state": getattr(from_state, "value", from_state),
        "to_state": getattr(to_state, "value", to_state),
        "payload": canonical(payload),
        "prev_hash": prev_hash,
    }
    row["hash"] = event_hash(SimpleNamespace(**row), case_no)
    return row


def record(session: Session, case: Case, actor: Actor, action: str, *, step: str | None = None,
           from_state=None, to_state=None, payload: dict | None = None, at: datetime | None = None) -> dict:
    """Append one event to the case's chain; the caller's flush writes it; return its row.

    The caller holds the case's row lock (or its version check) for the transaction, so the chain's
    head stays the head until the commit; it is remembered for the rest of the transaction. The
    event is not an ORM object: the case's new head makes the case dirty, and the flush that writes
    it inserts the transaction's new events after it, in one statement (``_write_events``).
    """
    if case.id is None:
        session.flush()
    seq, prev_hash = _head(session, case.id)
    row = _row(case.id, case.case_no, actor, action, seq + 1, prev_hash, step=step, from_state=from_state,
               to_state=to_state, payload=payload, at=at)
    session.info["chain_heads"][case.id] = (row["seq"], row["hash"])
    case.chain_seq, case.chain_hash = row["seq"], row["hash"]
    session.info.setdefault(_PENDING, []).append(row)
    return row


@sa_event.listens_for(Session, "after_flush")
def _write_events(session: Session, _flush_context) -> None:
    rows = session.info.pop(_PENDING, None)
    if rows:
        session.connection().execute(insert(Event.__table__), rows)


def event_row(session: Session, case_id: int, case_no: str, actor: Actor, action: str, *,
              step: str | None = None, from_state=None, to_state=None, payload: dict | None = None,
              at: datetime | None = None) -> dict:
    """Like ``record``, but return the event as a row for a bulk INSERT (the timer sweep's).

    The chain's head moves on for this transaction; the caller inserts the rows and writes the
    cases' new heads (``chain_head``) itself.
    """
    seq, prev_hash = _head(session, case_id)
    row = _row(case_id, case_no, actor, action, seq + 1, prev_hash, step=step, from_state=from_state,
               to_state=to_state, payload=payload, at=at)
    session.info["chain_heads"][case_id] = (row["seq"], row["hash"])
    return row


def chain_head(session: Session, case_id: int) -> tuple[int, str]:
    """The head this transaction has brought the case's chain to (for ``cases.chain_seq``, ``chain_hash``)."""
    return session.info["chain_heads"][case_id]


def prime_heads(session: Session, case_ids) -> None:
    """Read the chain heads of many cases in one query (for a batch that appends to each)."""
    heads = session.info.setdefault("chain_heads", {})
    wanted = [i for i in case_ids if i not in heads]
    if not wanted:
        return
    last = (select(Event.case_id, func.max(Event.seq).label("seq")).where(Event.case_id.in_(wanted))
            .group_by(Event.case_id).subquery())
    found = session.execute(select(Event.case_id, Event.seq, Event.hash)
                            .join(last, (Event.case_id == last.c.case_id) & (Event.seq == last.c.seq)))
    heads.update({row.case_id: (row.seq, row.hash) for row in found})
    heads.update({i: (0, GENESIS) for i in wanted if i not in heads})


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_chain_heads(session: Session, transaction) -> None:
    # Another transaction may extend a chain once this one ends (or a rollback undid our events). A
    # flush's own subtransaction ends inside the transaction: the heads hold on.
    if transaction.parent is None or transaction.nested:
        session.info.pop("chain_heads", None)
        session.info.pop(_PENDING, None)


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
