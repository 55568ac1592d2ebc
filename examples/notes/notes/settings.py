"""What the processes read from their environment (the add-ons set the URLs)."""

import os
import sys


def database_url():
    """DATABASE_URL, or exit with a message saying how to get one."""
    return _required("DATABASE_URL", "paas addons:create postgres")


def redis_url(required):
    """REDIS_URL; the worker cannot do without it, the web process only stops queueing."""
    if required:
        return _required("REDIS_URL", "paas addons:create redis")
    return os.environ.get("REDIS_URL") or None


def port():
    value = os.environ.get("PORT", "5000")
    if not value.isdigit() or not 0 < int(value) < 65536:
        sys.exit(f"error: PORT={value!r} is not a port number")
    return int(value)


def _required(name, hint):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"error: {name} is not set (attach one with `{hint}`)")
    return value
