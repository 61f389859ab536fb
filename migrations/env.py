"""Alembic environment: the engine comes from the app (``flask --app wsgi db …``)."""
from alembic import context

from workflow import models  # noqa: F401  (registers every table on the metadata)
from workflow.db import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
