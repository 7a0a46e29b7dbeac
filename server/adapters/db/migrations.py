"""Alembic, driven from the service: upgrade, and check that a database is at head."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from server.adapters.db.engine import create_engine

SOURCE_ROOT = Path(__file__).resolve().parents[3]


def _root() -> Path:
    """Where alembic.ini and migrations/ are: the source tree, else the working directory.

    An installed wheel has no source tree around it; the container image keeps
    both in its working directory (/app), see Dockerfile.
    """
    return SOURCE_ROOT if (SOURCE_ROOT / "alembic.ini").exists() else Path.cwd()


def _config(url: str) -> Config:
    config = Config(str(_root() / "alembic.ini"))
    config.attributes["database_url"] = url
    return config


def upgrade(url: str) -> None:
    """Bring the database to the newest schema (runs its own event loop)."""
    command.upgrade(_config(url), "head")


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config("")).get_current_head()


async def current_revision(url: str) -> str | None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            exists = await connection.run_sync(
                lambda sync: sa.inspect(sync).has_table("alembic_version")
            )
            if not exists:
                return None
            row = (
                await connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            ).first()
            return str(row[0]) if row else None
    finally:
        await engine.dispose()
