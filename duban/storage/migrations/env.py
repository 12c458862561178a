"""Alembic environment: runs on the connection `Database.migrate` hands over."""

from alembic import context

from duban.storage import tables

target_metadata = tables.METADATA  # the one declaration of the schema


def run() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER needs batch mode
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
