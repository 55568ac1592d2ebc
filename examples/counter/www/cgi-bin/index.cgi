#!/bin/sh
# Answers `/` with the visit count kept in the volume and what the other processes wrote
# there: the releases the release command migrated, the worker's ticks, the cron job's
# reports, and /data/note if anyone wrote one.
release="${PAAS_RELEASE:-unreleased}"
visits=$(cat /data/visits 2>/dev/null || echo 0)
visits=$((visits + 1))
echo "$visits" > /data/visits 2>/dev/null || visits="$visits (no volume at /data)"
printf 'Content-Type: text/plain\r\n\r\n'
printf 'Visit %s from %s %s on %s\n' "$visits" "${PAAS_APP:-counter}" "$release" "$(hostname)"
printf 'migrations: %s\n' "$(tr '\n' ' ' < /data/migrations 2>/dev/null)"
printf 'ticks: %s\n' "$(cat /data/ticks 2>/dev/null || echo 0)"
printf 'reports: %s\n' "$(wc -l < /data/reports 2>/dev/null || echo 0)"
printf 'note: %s\n' "$(cat /data/note 2>/dev/null)"
