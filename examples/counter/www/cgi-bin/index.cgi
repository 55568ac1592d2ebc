#!/bin/sh
# Answers `/` with the visit count kept in the volume and what the other processes wrote
# there: the releases the release command migrated, the worker's ticks, the cron job's
# reports, and /data/note if anyone wrote one.
release="${PAAS_RELEASE:-unreleased}"
# Requests run at once, in the old and the new release's containers: the count is written
# to a file of this request's own and renamed over the old one, so that no request ever
# reads half a number (a concurrent increment may be lost; a visit count can afford that).
visits=$(cat /data/visits 2>/dev/null)
case "$visits" in '' | *[!0-9]*) visits=0 ;; esac
visits=$((visits + 1))
mine="/data/.visits.$(hostname).$$"
{ echo "$visits" > "$mine" && mv "$mine" /data/visits; } 2>/dev/null ||
    visits="$visits (no volume at /data)"
printf 'Content-Type: text/plain\r\n\r\n'
printf 'Visit %s from %s %s on %s\n' "$visits" "${PAAS_APP:-counter}" "$release" "$(hostname)"
printf 'migrations: %s\n' "$(tr '\n' ' ' < /data/migrations 2>/dev/null)"
printf 'ticks: %s\n' "$(cat /data/ticks 2>/dev/null || echo 0)"
printf 'reports: %s\n' "$(wc -l < /data/reports 2>/dev/null || echo 0)"
printf 'note: %s\n' "$(cat /data/note 2>/dev/null)"
