#!/usr/bin/env bash
# delayed-memory.sh -- resident memory of bindery holding N messages in the delayed queue.
#
#   smtp-source -m N --> bindery --(gateway)--> smtp-sink -r RCPT (every RCPT gets a 4xx)
#
# Every message is accepted, attempted once, deferred (retry_interval 1200 s) and waits in the
# delayed queue. The figure is (VmRSS with N delayed - VmRSS after start) / N: what one queued
# message costs beyond the baseline. The goal is under 1 KB. Needs: postfix (smtp-source,
# smtp-sink), python3, a release build. Run as root (smtp-sink -u nobody).
#
# Knobs: N [100000] SIZE [2048] SESSIONS [20] SPOOL_SYNC [syncfs]
#        SPOOL_DIR [/var/tmp/bindery-delayed] OUT [/tmp/delayed-memory-<ts>]
set -euo pipefail
N=${N:-100000}; SIZE=${SIZE:-2048}; SESSIONS=${SESSIONS:-20}; SPOOL_SYNC=${SPOOL_SYNC:-syncfs}
SPOOL_DIR=${SPOOL_DIR:-/var/tmp/bindery-delayed}
OUT=${OUT:-/tmp/delayed-memory-$(date +%Y%m%d-%H%M%S)}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

SINK_PORT=$(free_port)
smtp-sink -u nobody -r RCPT "127.0.0.1:$SINK_PORT" 1000 > "$OUT/sink.out" 2>&1 &
SINK_PID=$!

start_bindery "Spool_Sync = $SPOOL_SYNC
Mainlog = \"$OUT/mainlog.jsonl\"
Relay_Hosts = ( 127.0.0.0/8 )
Gateway = \"127.0.0.1:$SINK_PORT\"
Retry_Interval = 1200"
sleep 1
base=$(rss_kb "$BINDERY_PID")
log "baseline RSS ${base} kB; injecting $N messages"
smtp-source -4 -s "$SESSIONS" -l "$SIZE" -m "$N" -f a@example.com -t b@example.net "127.0.0.1:$B_PORT" \
  > "$OUT/source.out" 2>&1
deadline=$(( $(date +%s) + 900 ))
while :; do
  deferred=$(grep -c '"type":"transient"' "$OUT/mainlog.jsonl" || true)
  [ "$deferred" -ge "$N" ] && break
  [ "$(date +%s)" -lt "$deadline" ] || { log "only $deferred of $N deferred"; exit 1; }
  sleep 0.5
done
sleep 2
held=$(rss_kb "$BINDERY_PID")
python3 - "$base" "$held" "$N" <<'PY'
import sys
base, held, n = (int(x) for x in sys.argv[1:])
print(f"{n} messages delayed: RSS {base/1024:.1f} MB at start, {held/1024:.1f} MB holding them, "
      f"{(held-base)*1024/n:.0f} bytes per message")
PY
