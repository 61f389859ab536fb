"""Alembic environment: the engine comes from the app (``flask --app wsgi db …``)."""
from alembic import context

from workflow import models  # noqa: F401  (registers every table on the metadata)
from workflow.db import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    if connection.dialect.name == "sqlite":
        # Batch mode copies and drops tables; with foreign keys enforced, dropping the old copy of a
        # referenced table would fail (or cascade). SQLite ignores this pragma inside a transaction.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()  # end the implicit transaction, so Alembic's own one commits the migration
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
