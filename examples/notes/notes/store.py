"""The notes table: every query the processes make."""

import psycopg2
import psycopg2.extras


def connect(url):
    # One connection per use: a database restart costs one failed request, not a stale pool.
    return psycopg2.connect(url, connect_timeout=5,
                            cursor_factory=psycopg2.extras.RealDictCursor)


def add(conn, body):
    with conn, conn.cursor() as cur:
        cur.execute("INSERT INTO notes (body) VALUES (%s) RETURNING *", (body,))
        return _public(cur.fetchone())


def get(conn, note_id):
    with conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM notes WHERE id = %s", (note_id,))
        row = cur.fetchone()
        return _public(row) if row else None


def latest(conn, limit=100):
    with conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM notes ORDER BY id DESC LIMIT %s", (limit,))
        return [_public(row) for row in cur.fetchall()]


def uncounted(conn, limit=100):
    """Ids of notes whose words no one has counted (their job was lost or never queued)."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM notes WHERE words IS NULL ORDER BY id LIMIT %s", (limit,))
        return [row["id"] for row in cur.fetchall()]


def count_words(conn, note_id):
    """Counts and stores the note's words; None when there is no such note."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT body FROM notes WHERE id = %s FOR UPDATE", (note_id,))
        row = cur.fetchone()
        if row is None:
            return None
        words = len(row["body"].split())
        cur.execute("UPDATE notes SET words = %s, counted_at = now() WHERE id = %s",
                    (words, note_id))
        return words


def ping(conn):
    with conn, conn.cursor() as cur:
        cur.execute("SELECT 1")


def _public(row):
    return {
        "id": row["id"],
        "body": row["body"],
        "created_at": row["created_at"].isoformat(),
        "words": row["words"],
        "counted_at": row["counted_at"].isoformat() if row["counted_at"] else None,
    }
