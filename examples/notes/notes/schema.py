"""The schema, as numbered migrations applied once each (the release command runs this).

`python3 -m notes.schema` brings the database to the latest version; run again, it does
nothing. Concurrent runs wait for each other on an advisory lock."""

import sys

import psycopg2

from notes import settings

# Append only: a migration that ran never changes.
MIGRATIONS = [
    (1, """CREATE TABLE notes (
               id bigserial PRIMARY KEY,
               body text NOT NULL,
               created_at timestamptz NOT NULL DEFAULT now())"""),
    (2, """ALTER TABLE notes
               ADD COLUMN words integer,
               ADD COLUMN counted_at timestamptz"""),
]

# Any constant shared by every run; it names the lock, not a row.
LOCK_KEY = 7_210_001


def migrate(conn):
    """Applies what is missing in one transaction; returns (from_version, to_version)."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        cur.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                           version integer PRIMARY KEY,
                           applied_at timestamptz NOT NULL DEFAULT now())""")
        cur.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
        current = cur.fetchone()[0]
        for version, sql in MIGRATIONS:
            if version > current:
                cur.execute(sql)
                cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
        return current, max(current, MIGRATIONS[-1][0])


def main():
    url = settings.database_url()
    try:
        conn = psycopg2.connect(url, connect_timeout=10)
    except psycopg2.OperationalError as err:
        sys.exit(f"error: cannot connect to DATABASE_URL: {err}".strip())
    try:
        before, after = migrate(conn)
    finally:
        conn.close()
    if before == after:
        print(f"schema is at version {after}, nothing to migrate")
    else:
        print(f"migrated the schema from version {before} to {after}")


if __name__ == "__main__":
    main()
