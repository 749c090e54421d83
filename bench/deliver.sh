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
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/bindery
mkdir -p "$OUT"
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -p bindery)
command -v smtp-source >/dev/null || { echo "smtp-source not found (apt-get install postfix)"; exit 2; }

BINDERY_PID=""; SINK_PID=""; STARTED_POSTFIX=0
cleanup() {
  [ -n "$BINDERY_PID" ] && kill "$BINDERY_PID" 2>/dev/null && wait "$BINDERY_PID" 2>/dev/null || true
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null || true
  [ $STARTED_POSTFIX = 1 ] && postfix stop >/dev/null 2>&1 || true
  rm -rf "$SPOOL_DIR"
}
trap cleanup EXIT

# ---- the sink: one per measurement, so its counter starts at 0 ----
SINK_PORT=$(free_port)
start_sink() {
  smtp-sink -u nobody -c "127.0.0.1:$SINK_PORT" 1000 > "$OUT/sink-$1.out" 2>&1 &
  SINK_PID=$!
  sleep 0.3
}
stop_sink() { kill "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=""; }
# smtp-sink -c rewrites a counter line in place ("sess=36 quit=36 mesg=1000\r").
sink_count() {
  local n
  n=$(tr '\r' '\n' < "$OUT/sink-$1.out" | grep -o 'mesg=[0-9]*' | tail -n1 | cut -d= -f2)
  echo "${n:-0}"
}

# ---- Postfix: accept, fsync, relay to the sink ----
PF_PORT=$(free_port)
postfix stop >/dev/null 2>&1 || true
[ -f /etc/postfix/master.cf.pre-bench ] || cp -p /etc/postfix/master.cf /etc/postfix/master.cf.pre-bench
cp -p /etc/postfix/master.cf.pre-bench /etc/postfix/master.cf
cat > /etc/postfix/main.cf <<CF
# bindery bench/deliver.sh: Postfix relays everything from loopback to the sink
compatibility_level = 3.6
myhostname = deliver-bench.localdomain
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
relay_domains =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
relayhost = [127.0.0.1]:$SINK_PORT
default_destination_concurrency_limit = $CONNS
default_process_limit = 100
smtpd_tls_security_level = none
smtp_tls_security_level = none
biff = no
maillog_file = /var/log/postfix-deliver-bench.log
CF
postconf -M# smtp/inet
postconf -M "127.0.0.1:${PF_PORT}/inet = 127.0.0.1:${PF_PORT} inet n - n - - smtpd"
postconf -F '*/*/chroot = n'
postsuper -d ALL >/dev/null 2>&1 || true
postfix start >/dev/null; STARTED_POSTFIX=1
sleep 1
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

# ---- bindery ----
start_bindery() {
  rm -rf "$SPOOL_DIR"; mkdir -p "$SPOOL_DIR"
  cat > "$OUT/bindery.conf" <<CF
Spoolbase = "$SPOOL_DIR/spool"
Spool_Sync = $SPOOL_SYNC
Relay_Hosts = ( 127.0.0.0/8 )
Gateway = "127.0.0.1:$SINK_PORT"
Max_Outbound_Connections = $CONNS
ESMTP_Listener { Listen "127.0.0.1:0" { } }
CF
  # Remove the old log first: the loop below must not read the previous run's port before
  # the new process has truncated the file.
  rm -f "$OUT/bindery.log"
  "$BIN" run -c "$OUT/bindery.conf" 2> "$OUT/bindery.log" &
  BINDERY_PID=$!
  for _ in $(seq 100); do
    B_PORT=$(grep -o 'addr=127.0.0.1:[0-9]*' "$OUT/bindery.log" 2>/dev/null | head -1 | cut -d: -f2 || true)
    [ -n "$B_PORT" ] && return 0; sleep 0.1
  done
  echo "bindery did not start"; cat "$OUT/bindery.log"; exit 1
}
stop_bindery() { kill "$BINDERY_PID"; wait "$BINDERY_PID" || true; BINDERY_PID=""; }

# measure NAME PORT -> "msg/s" on stdout, once the sink has counted N
measure() {
  local t0 t1 rc=0 n=$N deadline
  t0=$(now)
  smtp-source -4 -s "$SESSIONS" -l "$SIZE" -m "$n" -f a@example.com -t b@example.net "127.0.0.1:$2" \
    > "$OUT/source-$1.out" 2>&1 || rc=$?
  [ $rc = 0 ] || { log "smtp-source against $1 exited $rc: $(tail -n1 "$OUT/source-$1.out")"; exit 1; }
  deadline=$(( $(date +%s) + 600 ))
  while [ "$(sink_count "$1")" -lt "$n" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { log "$1: sink has $(sink_count "$1") of $n after 600 s"; exit 1; }
    sleep 0.05
  done
  t1=$(now)
  python3 -c "print(f'{$n/($t1-$t0):.0f}')"
}

log "warm-up (1000 each)"
start_sink warm-b; start_bindery
N=1000 measure warm-b "$B_PORT" >/dev/null
stop_bindery; stop_sink
start_sink warm-p
N=1000 measure warm-p "$PF_PORT" >/dev/null
stop_sink; postsuper -d ALL >/dev/null 2>&1 || true

printf 'run\tbindery_msg_s\tpostfix_msg_s\tbindery_hwm_kb\tpostfix_pss_kb\n' > "$OUT/results.tsv"
for r in $(seq "$RUNS"); do
  start_sink "b$r"; start_bindery
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
