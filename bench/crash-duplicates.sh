#!/usr/bin/env bash
# crash-duplicates.sh -- how many messages arrive twice after kill -9 in the middle of a flood.
#
#   smtp-source -N (a numbered recipient per message) --> bindery --(gateway, CONNS)--> count-sink
#
# Each trial injects N messages while bindery relays them, kills it with SIGKILL once the sink
# has counted a third of them, restarts it on the same spool, and waits until every recipient
# has arrived. It reports, per trial, what had arrived before the kill, how many recipients
# arrived more than once, and that none was lost. The bound to hold: at most one duplicate per
# outbound connection (what was on the wire at the kill).
#
# Knobs: N [10000] SIZE [2048] SESSIONS [20] CONNS [20] TRIALS [5]
#        SPOOL_DIR [/var/tmp/bindery-bench] OUT [/tmp/crash-<ts>]
set -euo pipefail
N=${N:-10000}; SIZE=${SIZE:-2048}; SESSIONS=${SESSIONS:-20}; CONNS=${CONNS:-20}
TRIALS=${TRIALS:-5}
SPOOL_DIR=${SPOOL_DIR:-/var/tmp/bindery-bench}
OUT=${OUT:-/tmp/crash-$(date +%Y%m%d-%H%M%S)}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

SINK_PORT=$(free_port)
counted() { python3 -c "import json,sys; c=json.load(open('$OUT/counts.json')); print(len(c), sum(1 for v in c.values() if v > 1))" 2>/dev/null || echo "0 0"; }

CONF="Relay_Hosts = ( 127.0.0.0/8 )
Gateway = \"127.0.0.1:$SINK_PORT\"
Max_Outbound_Connections = $CONNS"

printf 'trial\tbefore_kill\tarrived\tduplicates\tconnections\n' > "$OUT/results.tsv"
for t in $(seq "$TRIALS"); do
  rm -f "$OUT/counts.json"
  python3 "$ROOT/bench/count-sink.py" "$SINK_PORT" "$OUT/counts.json" &
  SINK_PID=$!
  sleep 0.5
  start_bindery "$CONF"
  smtp-source -4 -N -s "$SESSIONS" -l "$SIZE" -m "$N" -f a@example.com -t rcpt@example.net \
    "127.0.0.1:$B_PORT" > "$OUT/source-$t.out" 2>&1 &
  SRC=$!
  while read -r got _ < <(counted); [ "$got" -lt $((N / 3)) ]; do sleep 0.05; done
  kill -9 "$BINDERY_PID"; wait "$BINDERY_PID" 2>/dev/null || true; BINDERY_PID=""
  wait "$SRC" 2>/dev/null || true
  sleep 0.6
  read -r before _ < <(counted)
  # smtp-source stopped at the kill: what it had sent and been told 250 for is in the spool.
  accepted=$(grep -c . "$OUT/source-$t.out" 2>/dev/null || true)
  # Restart on the same spool (start_bindery would wipe it).
  "$BIN" run -c "$OUT/bindery.conf" 2>> "$OUT/bindery.log" &
  BINDERY_PID=$!
  prev=-1; same=0
  while :; do
    sleep 1
    read -r got dups < <(counted)
    if [ "$got" = "$prev" ]; then same=$((same + 1)); else same=0; fi
    prev=$got
    [ $same -ge 3 ] && break
  done
  stop_bindery
  kill "$SINK_PID"; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=""
  read -r got dups < <(counted)
  left=$(find "$SPOOL_DIR/spool/queue" -name '*.msg' | wc -l)
  log "trial $t: $before before the kill, $got recipients arrived, $dups twice, $left left in the spool"
  printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$before" "$got" "$dups" "$CONNS" >> "$OUT/results.tsv"
done
cat "$OUT/results.tsv"
