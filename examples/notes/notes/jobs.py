"""The job queue on Redis: one list, one JSON job per note to count."""

import json

import redis

QUEUE = "notes:jobs"


def connect(url):
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


def enqueue(conn, note_id):
    conn.rpush(QUEUE, json.dumps({"count_words": note_id}))


def take(conn, timeout):
    """The next note id to count, or None after `timeout` seconds with no job."""
    item = conn.blpop([QUEUE], timeout=timeout)
    if item is None:
        return None
    return int(json.loads(item[1])["count_words"])
