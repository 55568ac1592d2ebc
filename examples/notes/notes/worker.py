"""The worker process: takes jobs from Redis and counts each note's words into Postgres.

When the queue is empty, first at start and then at most once a minute, it also counts the
notes no job reached (stored while Redis was away, or taken by a worker that died)."""

import signal
import sys
import time

import psycopg2
import redis

from notes import jobs, settings, store

SWEEP_EVERY = 60


def count(database_url, note_id):
    conn = store.connect(database_url)
    try:
        words = store.count_words(conn, note_id)
    finally:
        conn.close()
    if words is None:
        print(f"note {note_id} is gone; nothing to count", flush=True)
    else:
        print(f"counted {words} words in note {note_id}", flush=True)


def sweep(database_url):
    conn = store.connect(database_url)
    try:
        ids = store.uncounted(conn)
    finally:
        conn.close()
    for note_id in ids:
        count(database_url, note_id)


def main():
    database_url = settings.database_url()
    queue = jobs.connect(settings.redis_url(required=True))

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    print(f"notes worker waiting for jobs on {jobs.QUEUE}", flush=True)

    last_sweep = None
    while not stopping:
        try:
            # A short wait, so SIGTERM is seen within a second.
            note_id = jobs.take(queue, timeout=1)
            if note_id is not None:
                count(database_url, note_id)
            elif last_sweep is None or time.monotonic() - last_sweep >= SWEEP_EVERY:
                sweep(database_url)
                last_sweep = time.monotonic()
        except (psycopg2.Error, redis.RedisError) as err:
            print(f"error: {type(err).__name__}: {str(err).strip()}; retrying", flush=True)
            time.sleep(1)
    print("notes worker stopped", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
