#!/bin/sh
# The shop's api: counts a visit in Redis (`cache` on the internal `back` network) and says
# which api task answered. busybox httpd runs it for /cgi-bin/visit; `?health` (the
# healthcheck) only asks Redis whether it is there.
ask() { printf '%s\r\nQUIT\r\n' "$1" | nc cache 6379 | head -n 1 | tr -d ':+\r'; }
if [ "$QUERY_STRING" = health ]; then
    answer=$(ask PING)
    [ "$answer" = PONG ] || { echo "Status: 503"; echo; echo "no redis"; exit 0; }
    printf 'Content-Type: text/plain\n\nok\n'
    exit 0
fi
count=$(ask "INCR visits")
printf 'Content-Type: text/plain\n\napi %s: visit %s\n' "$(hostname)" "${count:-?}"
