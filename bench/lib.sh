# lib.sh -- what the bench scripts share. Source it after setting OUT and SPOOL_DIR.
#
# Gives: log, free_port, now; BIN (the release binary, built if missing); start_bindery CONF
# (writes $OUT/bindery.conf as Spoolbase + CONF, starts bindery, sets BINDERY_PID and B_PORT),
# stop_bindery; inject_rate NAME PORT (smtp-source N messages of SIZE bytes over SESSIONS
# sessions into 127.0.0.1:PORT, msg/s on stdout); start_postfix PORT NAME MAIN_CF_EXTRA (a loopback Postfix on PORT, its
# main.cf the common part plus MAIN_CF_EXTRA); and a cleanup on exit that stops bindery, the
# sink in SINK_PID and Postfix, and removes SPOOL_DIR. For relay benches: start_sink,
# stop_sink, sink_count and measure (below).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# BINDERY_BIN picks another build (an A/B run against an older commit, say).
BIN=${BINDERY_BIN:-$ROOT/target/release/bindery}
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

# start_bindery CONF: a fresh spool, then bindery on 127.0.0.1 port 0 (read back from its log).
# With SPOOL_KEEP=1 the previous spool is moved aside and removed only at exit: on an ext4
# without a journal (this machine's) the inode allocator skips every inode freed in the last
# minute by reading its inode block (`recently_deleted`), so removing 20,000 files just before
# a side makes that side pay for the previous one's cleanup.
SPOOL_GEN=0
start_bindery() {
  if [ "${SPOOL_KEEP:-0}" = 1 ] && [ -d "$SPOOL_DIR/spool" ]; then
    SPOOL_GEN=$((SPOOL_GEN + 1)); mv "$SPOOL_DIR/spool" "$SPOOL_DIR/old-$SPOOL_GEN"
  else
    rm -rf "$SPOOL_DIR"
  fi
  mkdir -p "$SPOOL_DIR"
  printf 'Spoolbase = "%s/spool"\n%s\nESMTP_Listener { Listen "127.0.0.1:0" { } }\n' \
    "$SPOOL_DIR" "$1" > "$OUT/bindery.conf"
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

# inject_rate NAME PORT: how fast smtp-source hands N messages to 127.0.0.1:PORT (msg/s).
inject_rate() {
  local t0 t1 rc=0
  t0=$(now)
  smtp-source -4 -s "$SESSIONS" -l "$SIZE" -m "$N" -f a@example.com -t b@example.net "127.0.0.1:$2" \
    > "$OUT/source-$1.out" 2>&1 || rc=$?
  t1=$(now)
  [ $rc = 0 ] || { log "smtp-source against $1 exited $rc: $(tail -n1 "$OUT/source-$1.out")"; exit 1; }
  python3 -c "print(f'{$N/($t1-$t0):.0f}')"
}

# start_postfix PORT NAME EXTRA: Postfix accepting on 127.0.0.1:PORT from loopback, fsyncing
# like bindery; EXTRA says what it does with the mail (hold it, relay it).
start_postfix() {
  postfix stop >/dev/null 2>&1 || true
  [ -f /etc/postfix/master.cf.pre-bench ] || cp -p /etc/postfix/master.cf /etc/postfix/master.cf.pre-bench
  cp -p /etc/postfix/master.cf.pre-bench /etc/postfix/master.cf
  cat > /etc/postfix/main.cf <<CF
# bindery bench/$2.sh
compatibility_level = 3.6
myhostname = $2-bench.localdomain
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
relay_domains =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
default_process_limit = 100
smtpd_tls_security_level = none
biff = no
maillog_file = /var/log/postfix-$2-bench.log
$3
CF
  postconf -M# smtp/inet
  postconf -M "127.0.0.1:$1/inet = 127.0.0.1:$1 inet n - n - - smtpd"
  postconf -F '*/*/chroot = n'
  postsuper -d ALL >/dev/null 2>&1 || true
  postfix start >/dev/null; STARTED_POSTFIX=1
  sleep 1
}

# ---- relay benches (deliver.sh, dkim-relay.sh): smtp-source into PORT, smtp-sink counting ----
# start_sink NAME / stop_sink: Postfix's smtp-sink on 127.0.0.1:$SINK_PORT (set by the
# script), one per measurement so its counter starts at 0; sink_count NAME: what it counted.
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

# measure NAME PORT -> "msg/s" on stdout: N messages of SIZE bytes over SESSIONS sessions
# into 127.0.0.1:PORT, until the sink has counted N (at most MEASURE_TIMEOUT, 900 s).
measure() {
  local t0 t1 rc=0 n=$N deadline
  t0=$(now)
  smtp-source -4 -s "$SESSIONS" -l "$SIZE" -m "$n" -f a@example.com -t b@example.net "127.0.0.1:$2" \
    > "$OUT/source-$1.out" 2>&1 || rc=$?
  [ $rc = 0 ] || { log "smtp-source against $1 exited $rc: $(tail -n1 "$OUT/source-$1.out")"; exit 1; }
  deadline=$(( $(date +%s) + ${MEASURE_TIMEOUT:-900} ))
  while [ "$(sink_count "$1")" -lt "$n" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { log "$1: sink has $(sink_count "$1") of $n after ${MEASURE_TIMEOUT:-900} s"; exit 1; }
    sleep 0.05
  done
  t1=$(now)
  python3 -c "print(f'{$n/($t1-$t0):.0f}')"
}
