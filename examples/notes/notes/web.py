"""The web process: notes as HTML at / and as JSON at /notes, on $PORT.

    GET  /            the latest notes and a form to add one
    GET  /notes       the latest notes, JSON
    GET  /notes/ID    one note, JSON
    POST /notes       a note from JSON {"body": "..."} or a form field `body`; queues a job
    GET  /health      200 when the database answers
"""

import html
import json
import signal
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import redis

from notes import jobs, settings, store

MAX_BODY = 64 * 1024


class App:
    def __init__(self, database_url, redis_url):
        self.database_url = database_url
        self.queue = jobs.connect(redis_url) if redis_url else None

    def add(self, body):
        conn = store.connect(self.database_url)
        try:
            note = store.add(conn, body)
        finally:
            conn.close()
        if self.queue is not None:
            try:
                jobs.enqueue(self.queue, note["id"])
            except redis.RedisError as err:
                # The note is stored; the worker's sweep counts notes that got no job.
                print(f"warning: note {note['id']} not queued: {str(err).strip()}", flush=True)
        return note

    def query(self, fn, *args):
        conn = store.connect(self.database_url)
        try:
            return fn(conn, *args)
        finally:
            conn.close()


class Handler(BaseHTTPRequestHandler):
    app = None  # set by main

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/":
            self.send(200, "text/html; charset=utf-8", page(self.app.query(store.latest)))
        elif path == "/notes":
            self.send_json(200, self.app.query(store.latest))
        elif path.startswith("/notes/") and path[len("/notes/"):].isdigit():
            note = self.app.query(store.get, int(path[len("/notes/"):]))
            if note is None:
                self.send_json(404, {"error": "no such note"})
            else:
                self.send_json(200, note)
        elif path == "/health":
            self.app.query(store.ping)
            self.send(200, "text/plain", "ok\n")
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self):
        if urllib.parse.urlsplit(self.path).path != "/notes":
            self.send_json(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_json(413, {"error": f"a note is at most {MAX_BODY} bytes"})
            return
        raw = self.rfile.read(length).decode("utf-8", "replace")
        is_json = self.headers.get("Content-Type", "").startswith("application/json")
        try:
            body = json.loads(raw).get("body") if is_json else \
                urllib.parse.parse_qs(raw).get("body", [""])[0]
        except (ValueError, AttributeError):
            body = None
        if not isinstance(body, str) or not body.strip():
            self.send_json(400, {"error": "a note needs a non-empty body"})
            return
        note = self.app.add(body.strip())
        if is_json:
            self.send_json(201, note)
        else:
            self.send_response(303)
            self.send_header("Location", "/")
            self.send_header("Content-Length", "0")
            self.end_headers()

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (psycopg2.Error, redis.RedisError) as err:
            # One line in the log; the client gets a 503 it can retry.
            print(f"error: {type(err).__name__}: {str(err).strip()}", flush=True)
            try:
                self.send_json(503, {"error": "the database or the queue is unavailable"})
            except OSError:
                pass

    def send_json(self, status, value):
        self.send(status, "application/json", json.dumps(value) + "\n")

    def send(self, status, content_type, text):
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        print(f"{self.address_string()} {format % args}", flush=True)


def page(notes):
    items = "\n".join(
        f"<li>{html.escape(n['body'])} <small>"
        f"({'%d words' % n['words'] if n['words'] is not None else 'counting…'})</small></li>"
        for n in notes)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>notes</title></head>
<body>
<h1>notes</h1>
<form method="post" action="/notes"><input name="body" size="60" autofocus>
<button>Add</button></form>
<ul>
{items}
</ul>
</body></html>
"""


def main():
    database_url = settings.database_url()
    redis_url = settings.redis_url(required=False)
    if redis_url is None:
        print("warning: REDIS_URL is not set; notes are stored but not queued for the worker",
              flush=True)
    Handler.app = App(database_url, redis_url)
    server = ThreadingHTTPServer(("0.0.0.0", settings.port()), Handler)
    server.daemon_threads = True

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"notes web listening on port {server.server_address[1]}", flush=True)
    stop.wait()
    # Stop accepting, finish the requests in flight, exit 0.
    server.shutdown()
    server.server_close()
    print("notes web stopped", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
