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
# With ADAPTIVE=1 each run also relays through bindery with adaptive delivery on (issue 22):
# the module with both sweeps every second, adaptive_enabled, a sweep rule, and response
# rules registered from Lua, so every queue compares the book's generation, resolves its
# ranges and the sweeps cut windows while mail flows. The report adds its median and its
# ratio to plain bindery's.
#
# Knobs: N [20000] SIZE [2048] SESSIONS [20] CONNS [20] RUNS [3] SPOOL_SYNC [fsync]
#        ADAPTIVE [0] SPOOL_DIR [/var/tmp/bindery-bench] OUT [/tmp/deliver-<ts>]
set -euo pipefail
N=${N:-20000}; SIZE=${SIZE:-2048}; SESSIONS=${SESSIONS:-20}; CONNS=${CONNS:-20}; RUNS=${RUNS:-3}
SPOOL_SYNC=${SPOOL_SYNC:-fsync}
ADAPTIVE=${ADAPTIVE:-0}
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
start_relay_bindery() { # [extra configuration]
  start_bindery "Spool_Sync = $SPOOL_SYNC
Relay_Hosts = ( 127.0.0.0/8 )
Gateway = \"127.0.0.1:$SINK_PORT\"
Max_Outbound_Connections = $CONNS
${1:-}"
}

# Adaptive delivery on, its timers at their busiest.
cat > "$OUT/adaptive.lua" <<'LUA'
require("msys.adaptive")
msys.adaptive.registerRules({
  ["example.net"] = {
    responses = {
      { code = "\\[TSS04\\]", trigger = "5/60", action = {"suspend", "1 hour"} },
      { code = "^421 .*too many connections", trigger = "3/60", action = {"reduce_connections", "2"} },
    },
  },
}, "augment")
LUA
ADAPTIVE_CONF="adaptive_enabled = true
adaptive { suspend_sweep_interval = 1  bounce_sweep_interval = 1 }
adaptive_sweep_rule \"blocks\" { codes = ( \"bc:51\" \"bc:52\" ) }
scriptlet \"scriptlet\" { script \"adaptive\" { source = \"adaptive\" } }"

log "warm-up (1000 each)"
start_sink warm-b; start_relay_bindery
N=1000 measure warm-b "$B_PORT" >/dev/null
stop_bindery; stop_sink
start_sink warm-p
N=1000 measure warm-p "$PF_PORT" >/dev/null
stop_sink; postsuper -d ALL >/dev/null 2>&1 || true

# CPU seconds (user + system) bindery spent, per message, in microseconds.
cpu_us() { python3 -c "print(f'{$(awk '{print $14+$15}' "/proc/$BINDERY_PID/stat")*1e6/$(getconf CLK_TCK)/$N:.0f}')"; }

printf 'run\tbindery_msg_s\tpostfix_msg_s\tbindery_hwm_kb\tpostfix_pss_kb\tadaptive_msg_s\tbindery_cpu_us\tadaptive_cpu_us\n' > "$OUT/results.tsv"
for r in $(seq "$RUNS"); do
  a=""; a_cpu=""
  if [ "$ADAPTIVE" = 1 ]; then
    start_sink "a$r"; start_relay_bindery "$ADAPTIVE_CONF"
    a=$(measure "a$r" "$B_PORT")
    a_cpu=$(cpu_us)
    stop_bindery; stop_sink
    log "run $r: bindery with adaptive delivery $a msg/s, $a_cpu us CPU/msg"
  fi
  start_sink "b$r"; start_relay_bindery
  b=$(measure "b$r" "$B_PORT")
  b_hwm=$(awk '/VmHWM/ {print $2}' "/proc/$BINDERY_PID/status")
  b_cpu=$(cpu_us)
  stop_bindery; stop_sink
  left=$("$BIN" spool list -c "$OUT/bindery.conf" 2>/dev/null | wc -l)
  [ "$left" = 0 ] || log "bindery spool still holds $left after delivery"
  postfix stop >/dev/null; postfix start >/dev/null; sleep 1   # fresh processes: honest HWM
  start_sink "p$r"
  p=$(measure "p$r" "$PF_PORT")
  p_hwm=$(postfix_pss_kb)
  stop_sink
  log "run $r: bindery $b msg/s (peak ${b_hwm} kB), Postfix $p msg/s (Pss ${p_hwm} kB summed)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$b" "$p" "$b_hwm" "$p_hwm" "$a" "$b_cpu" "$a_cpu" >> "$OUT/results.tsv"
done
python3 - "$OUT/results.tsv" "$N" "$SIZE" <<'PY'
import statistics, sys
rows = [l.split('\t') for l in open(sys.argv[1]).read().split('\n')[1:] if l]
med = lambda i: statistics.median(float(r[i]) for r in rows)
b, p = med(1), med(2)
print(f"{sys.argv[2]} x {sys.argv[3]} B: bindery median {b:.0f} msg/s, Postfix median {p:.0f} msg/s, "
      f"ratio {b/p:.2f}x; memory: bindery peak RSS {med(3)/1024:.0f} MB, Postfix summed Pss {med(4)/1024:.0f} MB")
if all(len(r) > 5 and r[5] for r in rows):
    a = med(5)
    print(f"adaptive delivery on: median {a:.0f} msg/s, {a/b:.3f} of plain bindery ({(a/b-1)*100:+.1f} %); "
          f"CPU {med(7):.0f} us/msg against {med(6):.0f} ({(med(7)/med(6)-1)*100:+.1f} %)")
PY
