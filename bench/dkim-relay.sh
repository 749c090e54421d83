#!/usr/bin/env bash
# dkim-relay.sh -- relay with DKIM signing, bindery against Postfix + OpenDKIM, same run.
#
#   smtp-source -s SESSIONS -l SIZE -m N --> bindery (opendkim stanza) --(gateway)--> smtp-sink
#   smtp-source -s SESSIONS -l SIZE -m N --> Postfix --milter--> OpenDKIM
#                                                   --(relayhost)--> smtp-sink
#
# Sides, alternated within each run so machine noise hits all of them:
#   bindery-none, bindery-rsa (RSA-2048), bindery-ed25519, postfix-none, postfix-rsa (OpenDKIM,
#   Debian's `opendkim` package, RSA-2048) and postfix-ed25519 where that OpenDKIM signs it.
# Every side fsyncs before its 250 and signs relaxed/relaxed over from:to:subject:date:
# message-id, with the key of example.com (smtp-source's From domain).
#
# Reported per side: msg/s (N / time until the sink counted N), medians over RUNS; bindery's
# CPU per message (user + system of the process, reception, signing and delivery); the CPU
# signing adds (signed minus unsigned) beside the floor `openssl speed` gives for one signature
# in the same run. Each bindery run checks with `signing_stats` that it signed every message;
# the warm-up of each Postfix side dumps its messages and counts the signatures.
#
# Knobs: N [20000] SIZE [2048] SESSIONS [20] CONNS [20] RUNS [3]
#        SPOOL_DIR [/var/tmp/bindery-bench] OUT [/tmp/dkim-relay-<ts>]
# Run as root (Postfix, OpenDKIM). Needs: postfix, opendkim, openssl.
set -euo pipefail
N=${N:-20000}; SIZE=${SIZE:-2048}; SESSIONS=${SESSIONS:-20}; CONNS=${CONNS:-20}; RUNS=${RUNS:-3}
SPOOL_DIR=${SPOOL_DIR:-/var/tmp/bindery-bench}
OUT=${OUT:-/tmp/dkim-relay-$(date +%Y%m%d-%H%M%S)}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
command -v opendkim >/dev/null || { echo "opendkim not found (apt-get install opendkim)"; exit 2; }

# ---- keys: example.com, selectors rsa and ed ----
KEYS=$OUT/keys
mkdir -p "$KEYS/example.com"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KEYS/example.com/rsa.key" 2>/dev/null
openssl genpkey -algorithm ED25519 -out "$KEYS/example.com/ed.key" 2>/dev/null
# OpenDKIM refuses a configuration or key in a folder others may write (/tmp), and keys
# others may read: its files go in a folder of their own under /etc.
OD_DIR=/etc/bindery-bench-opendkim
rm -rf "$OD_DIR"; mkdir -m 755 "$OD_DIR"
cp "$KEYS/example.com/rsa.key" "$OD_DIR/rsa.key"; cp "$KEYS/example.com/ed.key" "$OD_DIR/ed.key"
chown opendkim "$OD_DIR/rsa.key" "$OD_DIR/ed.key"; chmod 600 "$OD_DIR/rsa.key" "$OD_DIR/ed.key"

SINK_PORT=$(free_port)
# A sink that also writes every message to a file (the warm-ups: the signatures are counted).
start_dump_sink() {
  rm -rf "$OUT/dump-$1"; mkdir -p "$OUT/dump-$1"; chmod 777 "$OUT/dump-$1"
  smtp-sink -u nobody -c -d "$OUT/dump-$1/%M." "127.0.0.1:$SINK_PORT" 1000 > "$OUT/sink-$1.out" 2>&1 &
  SINK_PID=$!
  sleep 0.3
}
signed_in_dump() { { grep -l '^DKIM-Signature:' -r "$OUT/dump-$1" 2>/dev/null || true; } | wc -l; }

# ---- OpenDKIM, one daemon per algorithm, as Postfix's milter ----
OD_PID=""
start_opendkim() { # ALG (rsa|ed) PORT
  local alg=rsa-sha256
  [ "$1" = ed ] && alg=ed25519-sha256
  cat > "$OD_DIR/$1.conf" <<CF
Syslog no
UserID opendkim
Socket inet:$2@127.0.0.1
Mode s
Domain example.com
Selector $1
KeyFile $OD_DIR/$1.key
Canonicalization relaxed/relaxed
SignatureAlgorithm $alg
SignHeaders from,to,subject,date,message-id
InternalHosts 127.0.0.0/8
PidFile $OD_DIR/$1.pid
CF
  opendkim -f -x "$OD_DIR/$1.conf" > "$OUT/opendkim-$1.log" 2>&1 &
  OD_PID=$!
  sleep 1
  kill -0 "$OD_PID" 2>/dev/null || { log "opendkim ($1) did not start: $(cat "$OUT/opendkim-$1.log")"; OD_PID=""; return 1; }
}
stop_opendkim() { [ -n "$OD_PID" ] && kill "$OD_PID" 2>/dev/null; wait "$OD_PID" 2>/dev/null || true; OD_PID=""; }

PF_PORT=$(free_port)
MILTER_PORT=$(free_port)
postfix_side() { # none|rsa|ed
  local milter=""
  if [ "$1" != none ]; then
    start_opendkim "$1" "$MILTER_PORT" || return 1
    milter="smtpd_milters = inet:127.0.0.1:$MILTER_PORT
milter_default_action = tempfail"
  fi
  start_postfix "$PF_PORT" dkim-relay "relayhost = [127.0.0.1]:$SINK_PORT
default_destination_concurrency_limit = $CONNS
smtp_tls_security_level = none
$milter"
}

# ---- bindery ----
start_bindery_side() { # none|rsa|ed
  local dkim=""
  case $1 in
    rsa) dkim="opendkim \"bench\" {
  header_canon = \"relaxed\"
  body_canon = \"relaxed\"
  headerlist = ( \"from\" \"to\" \"subject\" \"date\" \"message-id\" )
  key = \"$KEYS/%{d}/%{s}.key\"
  dkim_domain \"example.com\" { selector = \"rsa\" }
}" ;;
    ed) dkim="opendkim \"bench\" {
  header_canon = \"relaxed\"
  body_canon = \"relaxed\"
  digest = \"ed25519-sha256\"
  headerlist = ( \"from\" \"to\" \"subject\" \"date\" \"message-id\" )
  key = \"$KEYS/%{d}/%{s}.key\"
  dkim_domain \"example.com\" { selector = \"ed\" }
}" ;;
  esac
  start_bindery "Spool_Sync = fsync
Relay_Hosts = ( 127.0.0.0/8 )
Gateway = \"127.0.0.1:$SINK_PORT\"
Max_Outbound_Connections = $CONNS
Control_Listener { Listen \"$OUT/bindery.sock\" { } }
$dkim"
}
# "SIGNED MEAN_US": signatures made, and the mean time signing took per message as the daemon
# measured it around the signing call (wall clock, on the thread that signed).
bindery_signed() { "$BIN" console -s "$OUT/bindery.sock" --json signing_stats 2>/dev/null \
  | python3 -c 'import json,sys; g=json.load(sys.stdin)["global"]; print(g["total_messages_signed"], round(g["accumulated_signing_time"] * 1e6 / max(g["total_messages_processed"], 1)))'; }
bindery_cpu_us() { # user + system of BINDERY_PID, in µs
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000000 / hz}' "/proc/$BINDERY_PID/stat"
}

# ---- the floor: one signature, one core, in this run ----
speed() { openssl speed -seconds 3 "$1" 2>/dev/null; }
# From sign/s: the seconds column has too few digits for Ed25519.
RSA_FLOOR=$(speed rsa2048 | awk '/^rsa 2048 bits/ {printf "%.1f", 1e6 / $6}')
ED_FLOOR=$(speed ed25519 | awk '/EdDSA \(Ed25519\)/ {printf "%.1f", 1e6 / $7}')
log "openssl speed: RSA-2048 sign ${RSA_FLOOR} µs, Ed25519 sign ${ED_FLOOR} µs"

# ---- warm-ups, which also check that each side signs ----
PF_SIDES="none rsa"
postfix stop >/dev/null 2>&1 || true
log "warm-up (1000 each)"
for side in none rsa ed; do
  start_dump_sink "warm-b-$side"; start_bindery_side "$side"
  N=1000 measure "warm-b-$side" "$B_PORT" >/dev/null
  got=$(signed_in_dump "warm-b-$side")
  log "bindery-$side: $got of 1000 arrived signed"
  stop_bindery; stop_sink
done
for side in none rsa ed; do
  start_dump_sink "warm-p-$side"
  if ! postfix_side "$side"; then log "postfix-$side skipped"; stop_sink; continue; fi
  N=1000 measure "warm-p-$side" "$PF_PORT" >/dev/null
  got=$(signed_in_dump "warm-p-$side")
  log "postfix-$side: $got of 1000 arrived signed"
  if [ "$side" = ed ] && [ "$got" -gt 0 ]; then PF_SIDES="none rsa ed"; fi
  if [ "$side" = ed ] && [ "$got" = 0 ]; then log "OpenDKIM does not sign Ed25519 here: postfix-ed left out"; fi
  stop_opendkim; stop_sink; postfix stop >/dev/null 2>&1 || true; postsuper -d ALL >/dev/null 2>&1 || true
done

printf 'run\tside\tmsg_s\tcpu_us_per_msg\tsigned\tsigning_us\n' > "$OUT/results.tsv"
for r in $(seq "$RUNS"); do
  for side in none rsa ed; do
    start_sink "b-$side-$r"; start_bindery_side "$side"
    rate=$(measure "b-$side-$r" "$B_PORT")
    cpu=$(python3 -c "print(f'{$(bindery_cpu_us) / $N:.0f}')")
    read -r signed signing_us <<< "$( [ "$side" = none ] && echo "0 0" || bindery_signed )"
    [ "$side" = none ] || [ "$signed" = "$N" ] || log "bindery-$side signed $signed of $N"
    stop_bindery; stop_sink
    log "run $r: bindery-$side $rate msg/s, $cpu µs CPU/msg, signed $signed, $signing_us µs signing/msg"
    printf '%s\tbindery-%s\t%s\t%s\t%s\t%s\n' "$r" "$side" "$rate" "$cpu" "$signed" "$signing_us" >> "$OUT/results.tsv"
  done
  for side in $PF_SIDES; do
    start_sink "p-$side-$r"; postfix_side "$side"
    rate=$(measure "p-$side-$r" "$PF_PORT")
    stop_opendkim; stop_sink; postfix stop >/dev/null 2>&1 || true; postsuper -d ALL >/dev/null 2>&1 || true
    log "run $r: postfix-$side $rate msg/s"
    printf '%s\tpostfix-%s\t%s\t\t\t\n' "$r" "$side" "$rate" >> "$OUT/results.tsv"
  done
done
python3 - "$OUT/results.tsv" "$N" "$SIZE" "$RSA_FLOOR" "$ED_FLOOR" <<'PY'
import statistics, sys
rows = [l.split('\t') for l in open(sys.argv[1]).read().split('\n')[1:] if l]
n, size, rsa_floor, ed_floor = sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
def med(side, col):
    v = [float(r[col]) for r in rows if r[1] == side and r[col]]
    return statistics.median(v) if v else None
rate = {s: med(s, 2) for s in sorted({r[1] for r in rows})}
cpu = {s: med(s, 3) for s in rate if s.startswith("bindery")}
print(f"{n} x {size} B, medians of {len(rows) // len(rate)} runs")
for s, v in rate.items():
    extra = f", {cpu[s]:.0f} µs CPU/msg" if s in cpu else ""
    print(f"  {s:16} {v:8.0f} msg/s{extra}")
b0 = rate["bindery-none"]
print(f"  bindery-ed25519 / bindery-none: {rate['bindery-ed'] / b0:.2f} (goal >= 0.90)")
print(f"  bindery-rsa / postfix-rsa: {rate['bindery-rsa'] / rate['postfix-rsa']:.2f}x (goal >= 4)")
if "postfix-ed" in rate:
    print(f"  bindery-ed / postfix-ed: {rate['bindery-ed'] / rate['postfix-ed']:.2f}x")
print(f"  bindery-none / postfix-none: {b0 / rate['postfix-none']:.2f}x")
for s, floor in (("bindery-rsa", rsa_floor), ("bindery-ed", ed_floor)):
    added = cpu[s] - cpu["bindery-none"]
    inside = med(s, 5)
    print(f"  CPU signing adds ({s}): {added:.0f} µs/msg; openssl speed floor {floor:.0f} µs: "
          f"{added / floor:.2f}x (goal <= 1.2); signing itself {inside:.0f} µs/msg: {inside / floor:.2f}x")
PY
