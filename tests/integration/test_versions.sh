#!/bin/bash
# vSphere API versions: the client negotiates its SOAPAction from
# /sdk/vimServiceVersions.xml before the first versioned call, as pyVmomi
# does, and a whole round (init, CBT, snapshots, base and incremental sync)
# works against simulated 5.5, 6.0, 6.5, 6.7, 7.0 and 8.0 endpoints, each of
# which refuses a SOAPAction newer than its own, as ESXi and vCenter do.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
tmp=$(mktemp -d /tmp/v2k-versions-XXXXXX)
trap 'sim_stop; pkill -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT

v2k() {
  "$BIN" -q "$@" --vcenter "$(sim_info .url)" --username user --password-file <(echo pass) \
    --ca-file "$(sim_info .cert_file)"
}

# soap_action_refused VERSION: the simulator itself refuses a newer SOAPAction
# (so that the round below proves the client's choice, not a lenient server).
soap_action_refused() {
  local out
  out=$(curl -s --cacert "$(sim_info .cert_file)" -H 'Content-Type: text/xml' \
    -H "SOAPAction: \"urn:vim25/$1\"" --data '<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent></soapenv:Body></soapenv:Envelope>' \
    "$(sim_info .sdk)")
  grep -qF "Request version 'urn:vim25/$1' and namespace 'urn:vim25' are not supported" <<<"$out"
}

# same W KEY: the target of disk KEY (qcow2) equals the latest snapshot's data.
same() {
  local f flat
  f=$(jq -r --argjson k "$2" '[.snapshots[] | select(.removed | not)][-1].disks[] | select(.key == $k) | .file_name' "$1/manifest.json")
  flat="$(sim_info '.datastores.LocalDS_0')/$(sed 's/^\[[^]]*\] *//; s/\.vmdk$/-flat.vmdk/' <<<"$f")"
  qemu-img compare -q -f raw -F qcow2 "$flat" "$(jq -r '.disks[0].target_path' "$1/manifest.json")"
}

# round VERSION [simulator flags]: a whole warm round against that release.
round() {
  local v=$1 dir=$tmp/$1${2:-} W newer
  shift
  mkdir -p "$dir"
  sim_start "$dir" --api-version "$v" "$@" --vm "vm-$v" --disk scsi:16M --power on || { not_ok "$v: the simulator starts"; return; }
  case "$v" in 5.5) newer=6.0 ;; 6.0) newer=6.5 ;; 6.5) newer=6.7 ;; 6.7) newer=7.0 ;; 7.0) newer=8.0 ;; 8.0) newer=9.0 ;; esac
  check "$v$*: the simulator refuses SOAPAction $newer" soap_action_refused "$newer"
  W=$(v2k init --vm "vm-$v" --dst "$dir/dst" --workdir-root "$dir/root" --transport file \
        --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')" 2>"$dir/err")
  check "$v$*: init (exit $?; $(head -c 200 "$dir/err"))" test -n "$W" -a -f "$W/manifest.json"
  [ -n "$W" ] && [ -f "$W/manifest.json" ] || { sim_stop; return; }
  check "$v$*: the recorded API version is the server's" jq_true --arg v "$v" '.source.vcenter.api_version == $v' "$W/manifest.json"
  sim_fill "vm-$v" 2000 0 1000000 65
  check "$v$*: cbt enable" v2k --workdir "$W" cbt enable
  check "$v$*: snapshot base" v2k --workdir "$W" snapshot base
  check "$v$*: sync base" v2k --workdir "$W" sync base
  check "$v$*: base identical" same "$W" 2000
  sim_fill "vm-$v" 2000 5000000 300000 66
  check "$v$*: snapshot incr" v2k --workdir "$W" snapshot incr
  check "$v$*: sync incr" v2k --workdir "$W" sync incr
  check "$v$*: incr identical" same "$W" 2000
  sim_stop
}

for v in 5.5 6.0 6.5 6.7 7.0 8.0; do
  round "$v"
done
# Without the versions file the client starts with the oldest version it
# supports, which every supported release accepts, then speaks the server's.
round 5.5 --no-service-versions
round 8.0 --no-service-versions

# -v says what was negotiated.
mkdir -p "$tmp/dbg"
sim_start "$tmp/dbg" --api-version 6.7 --vm d --disk scsi:16M
"$BIN" -v init --vm d --dst "$tmp/dbg/dst" --workdir-root "$tmp/dbg/root" --transport file \
  --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')" --vcenter "$(sim_info .url)" \
  --username user --password-file <(echo pass) --ca-file "$(sim_info .cert_file)" >/dev/null 2>"$tmp/dbg/err"
check "-v: the negotiated version is shown" grep -qF "vimServiceVersions.xml: 6.7" "$tmp/dbg/err"
sim_stop

tap_done
