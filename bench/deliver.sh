#!/usr/bin/env bash
# deliver.sh -- end-to-end relay speed, bindery against Postfix, same machine, same run.
#
#   smtp-source -s SESSIONS -l SIZE -m N --> bindery --(gateway)--> smtp-sink
#   smtp-source -s SESSIONS -l SIZE -m N --> Postfix --(relayhost)--> smtp-sink
#
# Both fsync every accepted message before the 250, then relay it to the same smtp-sink with at
# most CONNS connections (Postfix: default_destination_concurrency_limit; bindery:
# Max_Outbound_Connections), and delete it. A run ends when the sink has counted N messages;
# the figure is N / (that moment - start of injection). Runs alternate (bindery, Postfix, ...)
# so machine noise hits both; the report gives medians, the ratio, and memory (bindery's peak
# RSS, VmHWM; Postfix: the summed Pss of its processes after the run). Run as root (Postfix).
#
# Knobs: N [20000] SIZE [2048] SESSIONS [20] CONNS [20] RUNS [3] SPOOL_SYNC [fsync]
#        SPOOL_DIR [/var/tmp/bindery-bench] OUT [/tmp/deliver-<ts>]
set -euo pipefail
N=${N:-20000}; SIZE=${SIZE:-2048}; SESSIONS=${SESSIONS:-20}; CONNS=${CONNS:-20}; RUNS=${RUNS:-3}
SPOOL_SYNC=${SPOOL_SYNC:-fsync}
SPOOL_DIR=${SPOOL_DIR:-/var/tmp/bindery-bench}
OUT=${OUT:-/tmp/deliver-$(date +%Y%m%d-%H%M%S)}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

SINK_PORT=$(free_port)
MEASURE_TIMEOUT=600

# ---- Postfix: accept, fsync, relay to the sink ----
PF_PORT=$(free_port)
start_postfix "$PF_PORT" deliver "relayhost = [127.0.0.1]:$SINK_PORT
default_destination_concurrency_limit = $CONNS
smtp_tls_security_level = none"

# Postfix is many processes sharing pages: their VmHWM would count libraries ~100 times, so
# its figure is the sum of proportional set sizes (Pss) right after the run.
postfix_pss_kb() {
  local master total=0 pid
  master=$(cat /var/spool/postfix/pid/master.pid 2>/dev/null | tr -d ' ')
  for pid in $master $(pgrep -P "$master" || true); do
    total=$((total + $(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# ---- bindery: accept, fsync, relay to the sink ----
start_relay_bindery() {
  start_bindery "Spool_Sync = $SPOOL_SYNC
Relay_Hosts = ( 127.0.0.0/8 )
Gateway = \"127.0.0.1:$SINK_PORT\"
Max_Outbound_Connections = $CONNS"
}

log "warm-up (1000 each)"
start_sink warm-b; start_relay_bindery
N=1000 measure warm-b "$B_PORT" >/dev/null
stop_bindery; stop_sink
start_sink warm-p
N=1000 measure warm-p "$PF_PORT" >/dev/null
stop_sink; postsuper -d ALL >/dev/null 2>&1 || true

printf 'run\tbindery_msg_s\tpostfix_msg_s\tbindery_hwm_kb\tpostfix_pss_kb\n' > "$OUT/results.tsv"
for r in $(seq "$RUNS"); do
  start_sink "b$r"; start_relay_bindery
  b=$(measure "b$r" "$B_PORT")
  b_hwm=$(awk '/VmHWM/ {print $2}' "/proc/$BINDERY_PID/status")
  stop_bindery; stop_sink
  left=$("$BIN" spool list -c "$OUT/bindery.conf" 2>/dev/null | wc -l)
  [ "$left" = 0 ] || log "bindery spool still holds $left after delivery"
  postfix stop >/dev/null; postfix start >/dev/null; sleep 1   # fresh processes: honest HWM
  start_sink "p$r"
  p=$(measure "p$r" "$PF_PORT")
  p_hwm=$(postfix_pss_kb)
  stop_sink
  log "run $r: bindery $b msg/s (peak ${b_hwm} kB), Postfix $p msg/s (Pss ${p_hwm} kB summed)"
  printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$b" "$p" "$b_hwm" "$p_hwm" >> "$OUT/results.tsv"
done
python3 - "$OUT/results.tsv" "$N" "$SIZE" <<'PY'
import statistics, sys
rows = [l.split('\t') for l in open(sys.argv[1]).read().split('\n')[1:] if l]
med = lambda i: statistics.median(float(r[i]) for r in rows)
b, p = med(1), med(2)
print(f"{sys.argv[2]} x {sys.argv[3]} B: bindery median {b:.0f} msg/s, Postfix median {p:.0f} msg/s, "
      f"ratio {b/p:.2f}x; memory: bindery peak RSS {med(3)/1024:.0f} MB, Postfix summed Pss {med(4)/1024:.0f} MB")
PY
