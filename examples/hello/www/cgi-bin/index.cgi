#!/bin/sh
# Answers `/` with one line saying which app, release and container served it.
release="${PAAS_RELEASE:-unreleased}"
case "$release" in [0-9]*) release="v$release" ;; esac
printf 'Content-Type: text/plain\r\n\r\n'
printf '%s from %s %s on %s\n' "${GREETING:-Hello}" "${PAAS_APP:-hello}" "$release" "$(hostname)"
