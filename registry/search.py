"""Free-text ranking over name, description, skill names, descriptions, tags and examples.

SQLite uses an FTS5 table ranked by bm25; PostgreSQL a weighted ``tsvector`` ranked by ``ts_rank``.
Words are OR-ed: a question in plain language ranks agents by how much of it they cover, rather
than demanding every word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["SearchIndex", "Searchable", "search_index_for"]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_MAX_WORDS = 32


@dataclass(frozen=True, slots=True)
class Searchable:
    """The text of one agent, by weight: name first, then skills, then description."""

    name: str
    skills: str
    description: str


def _words(query: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(query)][:_MAX_WORDS]


class SearchIndex:
    async def setup(self, conn: AsyncConnection) -> None:
        raise NotImplementedError

    async def put(self, conn: AsyncConnection, agent_id: str, doc: Searchable) -> None:
        raise NotImplementedError

    async def remove(self, conn: AsyncConnection, agent_id: str) -> None:
        await conn.execute(text("DELETE FROM registry_fts WHERE agent_id = :id"), {"id": agent_id})

    async def rank(self, conn: AsyncConnection, query: str, limit: int) -> dict[str, float]:
        """Agent ids matching ``query`` with a score (higher is better)."""
        words = _words(query)
        return await self._rank(conn, words, limit) if words else {}

    async def _rank(self, conn: AsyncConnection, words: list[str], limit: int) -> dict[str, float]:
        raise NotImplementedError


class SqliteSearch(SearchIndex):
    async def setup(self, conn: AsyncConnection) -> None:
        await conn.execute(
            text(
                "CREATE VIRTUAL TABLE IF NOT EXISTS registry_fts USING fts5("
                "agent_id UNINDEXED, name, skills, description, tokenize='porter unicode61')"
            )
        )

    async def put(self, conn: AsyncConnection, agent_id: str, doc: Searchable) -> None:
        await self.remove(conn, agent_id)
        await conn.execute(
            text("INSERT INTO registry_fts(agent_id, name, skills, description) VALUES (:id, :n, :s, :d)"),
            {"id": agent_id, "n": doc.name, "s": doc.skills, "d": doc.description},
        )

    async def _rank(self, conn: AsyncConnection, words: list[str], limit: int) -> dict[str, float]:
        match = " OR ".join(f'"{w}"' for w in words)
        rows = await conn.execute(
            text(
                "SELECT agent_id, -bm25(registry_fts, 0.0, 10.0, 4.0, 1.0) AS score FROM registry_fts "
                "WHERE registry_fts MATCH :q ORDER BY score DESC LIMIT :limit"
            ),
            {"q": match, "limit": limit},
        )
        return {row.agent_id: float(row.score) for row in rows}


class PostgresSearch(SearchIndex):
    async def setup(self, conn: AsyncConnection) -> None:
        await conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS registry_fts ("
                " agent_id VARCHAR(300) PRIMARY KEY REFERENCES registry_agents(id) ON DELETE CASCADE,"
                " doc tsvector NOT NULL)"
            )
        )
        await conn.execute(text("CREATE INDEX IF NOT EXISTS registry_fts_doc ON registry_fts USING GIN (doc)"))

    async def put(self, conn: AsyncConnection, agent_id: str, doc: Searchable) -> None:
        await conn.execute(
            text(
                "INSERT INTO registry_fts(agent_id, doc) VALUES (:id,"
                " setweight(to_tsvector('english', :n), 'A') || setweight(to_tsvector('english', :s), 'B')"
                " || setweight(to_tsvector('english', :d), 'C'))"
                " ON CONFLICT (agent_id) DO UPDATE SET doc = EXCLUDED.doc"
            ),
            {"id": agent_id, "n": doc.name, "s": doc.skills, "d": doc.description},
        )

    async def _rank(self, conn: AsyncConnection, words: list[str], limit: int) -> dict[str, float]:
        # to_tsquery on each word drops stop words and stems; OR-ing keeps partial matches.
        rows = await conn.execute(
            text(
                "WITH q AS (SELECT to_tsquery('english', string_agg(quote_literal(w) || ':*', ' | ')) AS query"
                " FROM unnest(CAST(:words AS text[])) AS w)"
                " SELECT agent_id, ts_rank(doc, q.query) AS score FROM registry_fts, q"
                " WHERE q.query IS NOT NULL AND doc @@ q.query ORDER BY score DESC LIMIT :limit"
            ),
            {"words": words, "limit": limit},
        )
        return {row.agent_id: float(row.score) for row in rows}


def search_index_for(dialect: str) -> SearchIndex:
    if dialect == "sqlite":
        return SqliteSearch()
    if dialect == "postgresql":
        return PostgresSearch()
    raise ValueError(f"the registry supports SQLite and PostgreSQL, not {dialect}")
