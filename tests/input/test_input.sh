#!/bin/bash
# Hostile and bad input: every kind of bad option value gets one clear line
# and the documented exit code, and writes nothing; broken workdirs name the
# file and the field; names from vCenter are data (quotes, $(), backticks,
# ../, unicode, 255 bytes, XML specials) through a whole migration; hostile
# SOAP replies are refused safely with bounded memory; bad areas JSON.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
jqe() { jq -e "$1" >/dev/null; }
tmp=$(mktemp -d /tmp/v2k-input-XXXXXX)
trap 'sim_stop; [ -n "${hostile:-}" ] && kill $hostile 2>/dev/null; pkill -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT
LONG=$(printf 'v%.0s' $(seq 255))
NAMES=("it's \"quoted\" & <tagged>" "dollar \$(touch $tmp/pwned) \`id\`" '../../etc/escape' 'ünïcødé 虚拟机' "$LONG")
args=()
i=0
for n in "${NAMES[@]}"; do
  args+=(--vm "$n" --disk scsi:8M --nic "Net <&> \"$i\" 'x'" --power on)
  i=$((i + 1))
done
sim_start "$tmp" "${args[@]}" --vm plain --disk scsi:8M --disk sata:8M --nic "VM Network" --power on || exit 1
DS=$(sim_info '.datastores.LocalDS_0')
v2k() {
  "$BIN" "$@" --vcenter "$(sim_info .url)" --username user --password-file <(echo pass) \
    --ca-file "$(sim_info .cert_file)"
}

# ---- bad option values: one line, exit 2, nothing written ----
W=$(v2k init --vm plain --dst "$tmp/dst" --workdir-root "$tmp/root" --transport file --datastore-map "LocalDS_0=$DS")
v2k --workdir "$W" cbt enable >/dev/null
# A refused command changes nothing at all: no file of the workdir root (the
# workdir, its events and its lock included) is created, removed, rewritten
# or touched, and no target appears under --dst. Every entry is listed with
# its type, mode, size, modification time and content hash.
snap() {
  local d
  for d in "$tmp/root" "$tmp/dst"; do
    if [ -e "$d" ]; then
      find "$d" -printf '%p %y %m %s %T@\n'
      find "$d" -type f -exec md5sum {} +
    else
      echo "$d: absent"
    fi
  done | sort
}
check "setup: a workdir with CBT enabled and its events, no target yet (what 'nothing written' compares)" \
  test -s "$W/events.log" -a "$(jq -r .phases.cbt.state "$W/manifest.json")" = done -a ! -e "$tmp/dst"
bad() {  # bad LABEL COMMAND...
  local label=$1
  shift
  local out rc before after
  before=$(snap)
  out=$(v2k --workdir "$W" "$@" 2>&1 >/dev/null)
  rc=$?
  check "bad input, $label: exit 2, one line" test "$rc" -eq 2 -a "$(grep -c . <<<"$out")" -eq 1
  after=$(snap)
  [ "$after" = "$before" ] || diff <(echo "$before") <(echo "$after") | sed 's/^/# /'
  check "bad input, $label: nothing written" test "$after" = "$before"
}
bad "unknown flag" sync base --bogus
bad "missing value" sync base --jobs
bad "wrong type" sync base --jobs many
bad "out of range" sync base --jobs 99
bad "size with a bad unit" sync base --request-size 4X
bad "negative size" sync base --max-inflight -1
bad "zero interval" sync base --checkpoint-interval 0
bad "no sync kind" sync
bad "two sync kinds" sync base incr
bad "--full on incr" sync incr --full
bad "unknown snapshot kind" snapshot middle
bad "empty snapshot name" snapshot base --name ''
bad "cbt subcommand" cbt disable
bad "cbt areas without a snapshot" cbt areas --disk scsi0:0
bad "verify sample 0" verify --sample 0
bad "verify snapshot kind" verify --snapshot latest
bad "shutdown policy" cutover --shutdown reboot
bad "shutdown timeout" cutover --shutdown-timeout soon
bad "force without guest" cutover --shutdown manual --force-poweroff
bad "disk bus" cutover --disk-bus ide
bad "nic model" cutover --nic-model rtl8139
bad "net map without a target" cutover --net-map "VM Network"
bad "net map target kind" cutover --net-map "VM Network=vlan:5"
bad "net default" cutover --net-default br0
bad "convert mode" cutover --convert maybe
bad "target provider" cutover --target-provider openstack
bad "cloud signature" cutover --cloud-signature md5
bad "cloud net map" cutover --cloud-net-map nonet
bad "on-failure" cutover --on-failure ignore
bad "run until" run --until tomorrow
bad "run verify mode" run --verify half
bad "run downtime target" run --downtime-target 0
bad "run max-incr" run --max-incr lots
bad "copy without endpoints" copy
bad "convert accel" convert --convert-accel gpu
bad "cleanup argument" cleanup now
bad "status events" status --events many
out=$("$BIN" --bogus 2>&1)
rc=$?
check "an unknown global option: exit 2 naming it" \
  test "$rc" -eq 2 -a "$(grep -c "unknown global option or missing value: --bogus" <<<"$out")" -eq 1
out=$("$BIN" frobnicate 2>&1)
rc=$?
check "an unknown command: exit 2 naming it" test "$rc" -eq 2 -a "$(grep -c "unknown command 'frobnicate'" <<<"$out")" -eq 1
out=$("$BIN" --json sync base 2>/dev/null)
check "--json errors are one JSON object" \
  bash -c 'jq -se "length == 1 and .[0].ok == false and .[0].error.exit_code == 2 and .[0].error.code == \"usage\"" <<<"$1" >/dev/null' _ "$out"

# ---- broken workdirs: the file and the field are named ----
wd() {  # wd LABEL EXIT PATTERN DIR
  local out rc
  out=$("$BIN" --workdir "$4" status 2>&1)
  rc=$?
  check "workdir $1: exit $2, names it" test "$rc" -eq "$2" -a "$(grep -c -- "$3" <<<"$out")" -gt 0
}
wd "missing" 3 "does not exist" "$tmp/nowhere"
touch "$tmp/afile"
wd "not a directory" 3 "not a directory" "$tmp/afile"
mkdir -p "$tmp/bad"
for k in truncated notjson schema inconsistent negative; do mkdir -p "$tmp/bad/$k"; done
head -c 300 "$W/manifest.json" >"$tmp/bad/truncated/manifest.json"
echo 'not json at all' >"$tmp/bad/notjson/manifest.json"
jq '.schema = "ablestack-v2k/manifest/v9"' "$W/manifest.json" >"$tmp/bad/schema/manifest.json"
jq '.disks[1].id = .disks[0].id' "$W/manifest.json" >"$tmp/bad/inconsistent/manifest.json"
jq '.disks[0].capacity = -5' "$W/manifest.json" >"$tmp/bad/negative/manifest.json"
chmod 700 "$tmp"/bad/*; chmod 600 "$tmp"/bad/*/manifest.json
wd "truncated manifest" 3 "manifest.json" "$tmp/bad/truncated"
wd "not JSON" 3 "manifest.json" "$tmp/bad/notjson"
wd "another schema version" 3 "schema" "$tmp/bad/schema"
wd "duplicate disk ids" 3 "disks\[1\]" "$tmp/bad/inconsistent"
wd "a negative capacity" 3 "disks\[0\].capacity" "$tmp/bad/negative"
mkdir -p "$tmp/bad/othervm"
jq '.source.vm.instance_uuid = "00000000-0000-0000-0000-000000000000"' "$W/manifest.json" >"$tmp/bad/othervm/manifest.json"
chmod 700 "$tmp/bad/othervm"; chmod 600 "$tmp/bad/othervm/manifest.json"
out=$(v2k --workdir "$tmp/bad/othervm" snapshot base 2>&1)
rc=$?
check "a workdir of another VM is refused (exit 2), naming both UUIDs" \
  test "$rc" -eq 2 -a "$(grep -c "is not the VM of this workdir (instance UUID $(jq -r .source.vm.instance_uuid "$W/manifest.json"), the workdir's is 00000000-0000-0000-0000-000000000000)" <<<"$out")" -eq 1
mkdir -p "$tmp/bad/othervc"
jq '.source.vcenter.instance_uuid = "11111111-2222-3333-4444-555555555555"' "$W/manifest.json" >"$tmp/bad/othervc/manifest.json"
chmod 700 "$tmp/bad/othervc"; chmod 600 "$tmp/bad/othervc/manifest.json"
out=$(v2k --workdir "$tmp/bad/othervc" snapshot base 2>&1)
rc=$?
check "a workdir of another vCenter is refused (exit 2)" \
  test "$rc" -eq 2 -a "$(grep -c "is not the vCenter of this workdir" <<<"$out")" -eq 1
check "the refused workdirs took no snapshot" test -z "$(sim_snapshot_names plain)"

# ---- names are data: a whole migration for each hostile name ----
# Hostile strings never go inside a bash -c of the test itself.
i=0
for n in "${NAMES[@]}"; do
  label=$(printf '%s' "$n" | cut -c1-24)
  moref=$(jq -r --argjson i "$i" '.vms[$i].moref' "$SIM_INFO")
  w=$(v2k init --vm "$moref" --dst "$tmp/hdst$i" --workdir-root "$tmp/hroot" --transport file --datastore-map "LocalDS_0=$DS" 2>&1)
  check "name '$label': init" test $? -eq 0
  real=$(realpath -- "$w" 2>/dev/null)
  check "name '$label': the workdir stays under its root" test "${real#$tmp/hroot/}" != "$real"
  check "name '$label': recorded exactly" test "$(jq -r .source.vm.name "$w/manifest.json")" = "$n"
  out=$(v2k --workdir "$w" run --libvirt-uri test:///default --convert off --incr-interval 0 --max-incr 1 \
        --net-default bridge:br0 --json 2>/dev/null)
  check "name '$label': a whole run" jqe '.state == "done"' <<<"$out"
  xml=$(ls "$w"/artifacts/*.xml 2>/dev/null | head -1)
  check "name '$label': the domain XML validates (names escaped)" virt-xml-validate "${xml:-/nonexistent}" domain
  check "name '$label': targets stay under --dst" test "$(find "$tmp/hdst$i" -name '*.qcow2' | wc -l)" -eq 1
  i=$((i + 1))
done
n=${NAMES[0]}
out=$(v2k init --vm "$n" --dst "$tmp/hq" --workdir-root "$tmp/hq" --transport file --datastore-map "LocalDS_0=$DS" --json 2>&1)
check "a name with quotes and XML specials works with --vm NAME too" jqe .ok <<<"$out"
w=$(ls -d "$tmp"/hroot/_._.._etc_escape/*/ | head -1)
check "a '/' in a name is %2f in its recorded inventory path" \
  test "$(jq -r .source.vm.inventory_path "$w/manifest.json")" = "DC0/vm/..%2f..%2fetc%2fescape"
check "no name was ever run as a command" test ! -e "$tmp/pwned"

# ---- hostile SOAP replies ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/h.key" -out "$tmp/h.pem" -days 1 \
  -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" >/dev/null 2>&1
for mode in malformed truncated huge deep laughs xxe notsoap empty; do
  rm -f "$tmp/port" "$tmp/port.served"
  python3 "$here/hostile_soap.py" $mode "$tmp/h.pem" "$tmp/h.key" "$tmp/port" &
  hostile=$!
  for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
  hostile_init() {  # hostile_init BINARY
    /usr/bin/time -f 'RSS %M' "$1" init --vm x --dst "$tmp/x" --workdir-root "$tmp/hx" --transport file \
      --datastore-map "LocalDS_0=$DS" --vcenter "https://127.0.0.1:$(cat "$tmp/port")" --username u \
      --password-file <(echo p) --ca-file "$tmp/h.pem" --call-timeout 120 2>&1
  }
  out=$(hostile_init "$BIN")
  rc=$?
  # The tool's own output: without /usr/bin/time's lines.
  msg=$(grep -v -e '^RSS [0-9]*$' -e '^Command exited with non-zero status' <<<"$out")
  # A refusal proves something only if the hostile reply was what it refused.
  check "SOAP $mode: the hostile server was reached" grep -qsx "$mode" "$tmp/port.served"
  check "SOAP $mode: refused cleanly in one line (exit $rc)" \
    test "$rc" -ge 5 -a "$rc" -le 6 -a "$(grep -c . <<<"$msg")" -eq 1 -a "${msg#ablestack_v2k: error: }" != "$msg"
  check "SOAP $mode: the refused init leaves no workdir" test ! -e "$tmp/hx"
  case $mode in
    xxe|laughs)
      check "SOAP $mode: the DTD is refused" grep -q "carries a DTD or entity declaration; refused" <<<"$msg" ;;
  esac
  if [ "$mode" = xxe ]; then
    # The entity is the fault's text, which a client that expanded it would
    # print: the file's content must appear nowhere.
    check "XXE: /etc/passwd never reached the output" bash -c '! grep -q "root:x:0" <<<"$1"' _ "$out"
  fi
  # Memory is measured without the sanitizers, whose shadow memory would
  # dominate: V2K_PLAIN_BIN is the plain build when BIN is the ASan one.
  if [ -n "${V2K_PLAIN_BIN:-}" ] && [ "$V2K_PLAIN_BIN" != "$BIN" ]; then
    out=$(hostile_init "$V2K_PLAIN_BIN")
    rc=$?
    check "SOAP $mode: the plain build refuses it too (exit $rc)" test "$rc" -ge 5 -a "$rc" -le 6
    [ "$mode" = xxe ] && check "XXE: /etc/passwd never reached the plain build's output" \
      bash -c '! grep -q "root:x:0" <<<"$1"' _ "$out"
  fi
  rss=$(grep -o 'RSS [0-9]*' <<<"$out" | grep -o '[0-9]*')
  check "SOAP $mode: bounded memory (${rss:-?} KiB)" test "${rss:-999999}" -lt 262144
  kill $hostile 2>/dev/null; wait $hostile 2>/dev/null
  hostile=
done

# ---- the areas JSON of copy ----
qemu-img create -q -f raw "$tmp/a.raw" 1M
qemu-img create -q -f raw "$tmp/b.raw" 1M
areas() {  # areas LABEL JSON PATTERN
  printf '%s' "$2" >"$tmp/areas.json"
  local out rc
  out=$("$BIN" copy --areas "$tmp/areas.json" "$tmp/a.raw" "$tmp/b.raw" 2>&1)
  rc=$?
  check "areas $1: exit 2, says why" test "$rc" -eq 2 -a "$(grep -c -- "$3" <<<"$out")" -gt 0
}
areas "malformed" '[{"start":0,"length":' "areas.json: not valid JSON"
areas "not an array" '{"start":0}' "want a JSON array"
areas "overlapping" '[{"start":0,"length":8192},{"start":4096,"length":8192}]' "area 1 at 4096 overlaps"
areas "past the end" '[{"start":1048000,"length":4096}]' "past the end of the disk"
areas "negative" '[{"start":-4096,"length":4096}]' "start -4096, length 4096 is not a valid range"
areas "zero length" '[{"start":0,"length":0}]' "start 0, length 0 is not a valid range"
tap_done
