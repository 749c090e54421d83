#!/usr/bin/env bash
# soak.sh -- a steady load for a long time: does anything grow that should not?
#
#   smtp-source (RATE messages every second) --> bindery --(gateway)--> smtp-sink
#
# For DURATION seconds (default 600), injects RATE messages of SIZE bytes each second, then
# waits for the spool to drain. Every SAMPLE seconds it records bindery's RSS, open
# descriptors, threads, spooled files, accepted (mainlog reception records) and delivered
# (the sink's count). It reports the trend of RSS and descriptors (first tenth against last
# tenth of the run, and a least-squares slope per hour) and fails if delivered != accepted.
#
# Knobs: DURATION [600] RATE [200] SIZE [2048] SESSIONS [4] CONNS [20] SAMPLE [10]
#        SPOOL_DIR [/var/tmp/bindery-soak] OUT [/tmp/soak-<ts>]
set -euo pipefail
DURATION=${DURATION:-600}; RATE=${RATE:-200}; SIZE=${SIZE:-2048}; SESSIONS=${SESSIONS:-4}
CONNS=${CONNS:-20}; SAMPLE=${SAMPLE:-10}
SPOOL_DIR=${SPOOL_DIR:-/var/tmp/bindery-soak}
OUT=${OUT:-/tmp/soak-$(date +%Y%m%d-%H%M%S)}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

SINK_PORT=$(free_port)
smtp-sink -u nobody -c "127.0.0.1:$SINK_PORT" 1000 > "$OUT/sink.out" 2>&1 &
SINK_PID=$!
sleep 0.3
delivered() {
  local n
  n=$(tr '\r' '\n' < "$OUT/sink.out" | grep -o 'mesg=[0-9]*' | tail -n1 | cut -d= -f2)
  echo "${n:-0}"
}
start_bindery "Relay_Hosts = ( 127.0.0.0/8 )
Mainlog = \"$SPOOL_DIR/mainlog.jsonl\"
Gateway = \"127.0.0.1:$SINK_PORT\"
Max_Outbound_Connections = $CONNS"
accepted() { grep -c '"type":"reception"' "$SPOOL_DIR/mainlog.jsonl" 2>/dev/null || echo 0; }
status() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$BINDERY_PID/status"; }
sample() {
  local t=$1
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$(status VmRSS)" \
    "$(ls "/proc/$BINDERY_PID/fd" | wc -l)" "$(status Threads)" \
    "$(find "$SPOOL_DIR/spool/queue" -name '*.msg' | wc -l)" "$(accepted)" "$(delivered)" \
    >> "$OUT/samples.tsv"
}
printf 'seconds\trss_kb\tfds\tthreads\tspooled\taccepted\tdelivered\n' > "$OUT/samples.tsv"
log "soak: $RATE msg/s of $SIZE B for $DURATION s; samples in $OUT/samples.tsv"
t0=$(date +%s); next_sample=$t0
while :; do
  now_s=$(date +%s); elapsed=$((now_s - t0))
  [ "$elapsed" -lt "$DURATION" ] || break
  tick=$(now)
  smtp-source -4 -s "$SESSIONS" -l "$SIZE" -m "$RATE" -f a@example.com -t b@example.net \
    "127.0.0.1:$B_PORT" >> "$OUT/source.out" 2>&1 || log "smtp-source failed at $elapsed s"
  if [ "$now_s" -ge "$next_sample" ]; then
    sample "$elapsed"; next_sample=$((next_sample + SAMPLE))
  fi
  # The rest of the second, if any is left.
  python3 -c "import time; d = 1 - (time.time() - $tick); time.sleep(d) if d > 0 else None"
done
log "injection over; waiting for the spool to drain"
deadline=$(( $(date +%s) + 300 ))
while [ "$(delivered)" -lt "$(accepted)" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 1; done
sleep 2
sample "$(( $(date +%s) - t0 ))"
a=$(accepted); d=$(delivered)
stop_bindery
python3 - "$OUT/samples.tsv" "$a" "$d" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
t = [float(r[0]) for r in rows]
def trend(col, name, unit):
    v = [float(r[col]) for r in rows]
    n = max(1, len(v) // 10)
    first, last = sum(v[:n]) / n, sum(v[-n - 1:-1]) / n if len(v) > n else v[-1]
    mt, mv = sum(t) / len(t), sum(v) / len(v)
    den = sum((x - mt) ** 2 for x in t) or 1
    slope = sum((x - mt) * (y - mv) for x, y in zip(t, v)) / den * 3600
    print(f"{name}: first tenth {first:.0f} {unit}, last tenth {last:.0f} {unit}, "
          f"slope {slope:+.0f} {unit}/hour, max {max(v):.0f}")
trend(1, "RSS", "kB")
trend(2, "descriptors", "")
trend(3, "threads", "")
a, d = int(sys.argv[2]), int(sys.argv[3])
print(f"accepted {a}, delivered {d}: {'equal' if a == d else 'DIFFERENT'}")
sys.exit(0 if a == d else 1)
PY
