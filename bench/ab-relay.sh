#!/usr/bin/env bash
# ab-relay.sh A_BIN B_BIN -- two bindery builds side by side on the relay path, alternating
# (A, B, A, B, ...) so the machine's noise hits both, as deliver.sh does against Postfix:
#
#   smtp-source -s SESSIONS -l SIZE -m N --> bindery --(gateway, CONNS)--> smtp-sink
#
# Reports each run and the medians with B/A. Knobs: N [20000] SIZE [2048] SESSIONS [20]
# CONNS [20] RUNS [5] SPOOL_DIR [/var/tmp/bindery-bench] OUT [/tmp/ab-<ts>]
set -euo pipefail
A=$1; B=$2
N=${N:-20000}; SIZE=${SIZE:-2048}; SESSIONS=${SESSIONS:-20}; CONNS=${CONNS:-20}; RUNS=${RUNS:-5}
SPOOL_DIR=${SPOOL_DIR:-/var/tmp/bindery-bench}
OUT=${OUT:-/tmp/ab-$(date +%Y%m%d-%H%M%S)}
BINDERY_BIN=$A
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

SINK_PORT=$(free_port)
sink_count() {
  local n
  n=$(tr '\r' '\n' < "$OUT/sink.out" | grep -o 'mesg=[0-9]*' | tail -n1 | cut -d= -f2)
  echo "${n:-0}"
}
one_run() {  # BIN -> msg/s
  BIN=$1
  smtp-sink -u nobody -c "127.0.0.1:$SINK_PORT" 1000 > "$OUT/sink.out" 2>&1 &
  SINK_PID=$!
  sleep 0.3
  start_bindery "Relay_Hosts = ( 127.0.0.0/8 )
Gateway = \"127.0.0.1:$SINK_PORT\"
Max_Outbound_Connections = $CONNS"
  local t0 t1
  t0=$(now)
  smtp-source -4 -s "$SESSIONS" -l "$SIZE" -m "$N" -f a@example.com -t b@example.net \
    "127.0.0.1:$B_PORT" > "$OUT/source.out" 2>&1
  while [ "$(sink_count)" -lt "$N" ]; do sleep 0.05; done
  t1=$(now)
  stop_bindery
  kill "$SINK_PID"; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=""
  python3 -c "print(f'{$N/($t1-$t0):.0f}')"
}
a=(); b=()
for r in $(seq "$RUNS"); do
  x=$(one_run "$A"); y=$(one_run "$B")
  a+=("$x"); b+=("$y")
  log "run $r: A $x msg/s, B $y msg/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
echo "$N x $SIZE B: A median $ma msg/s, B median $mb msg/s, B/A $(python3 -c "print(f'{$mb/$ma:.2f}')")"
