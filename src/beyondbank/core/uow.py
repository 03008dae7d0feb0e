"""The unit of work: one session, one clock, one transaction; services are the only callers of commit."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from beyondbank.core.clock import Clock


class UnitOfWork:
    """Opens a session on enter and rolls back anything uncommitted on exit."""

    def __init__(self, session_factory: sessionmaker[Session], clock: Clock) -> None:
        self._session_factory = session_factory
        self.clock = clock
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside its `with` block")
        return self._session

    def __enter__(self) -> UnitOfWork:
        self._session = self._session_factory()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            session.rollback()
        finally:
            session.close()
            self._session = None

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

    def single_statements(self) -> Connection:
        """The session's connection with every statement a transaction of its own (autocommit),
        for work done in single calls of database functions, each all or nothing: no `BEGIN`
        and `COMMIT` round trips. Only when no transaction is under way and the session has an
        engine of its own; otherwise (a test's shared connection) the usual connection, where
        the calls commit with `commit` as usual."""
        session = self.session
        if isinstance(session.get_bind(), Engine) and not session.in_transaction():
            return session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        return session.connection()

    def fresh(self) -> UnitOfWork:
        """A second, independent unit of work on the same database and clock."""
        return UnitOfWork(self._session_factory, self.clock)


def make_session_factory(bind: object) -> sessionmaker[Session]:
    """Sessions for an engine, or for one connection whose outer transaction a test rolls back
    (each commit then releases a savepoint instead)."""
    return sessionmaker(  # type: ignore[call-overload, no-any-return]
        bind=bind, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
