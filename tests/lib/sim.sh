# Helpers to start, query and stop the vCenter simulator and to write guest
# data into its disks. Source this file; it needs V2K_VCSIM (the binary).
#   sim_start DIR [simulator flags...]   starts it, sets SIM_INFO and SIM_PID
#   sim_info JQ-EXPR                     reads the info JSON
#   sim_disk_flat VM KEY                 the flat file of a VM's disk
#   sim_write VM KEY OFFSET FILE         writes FILE into the disk at OFFSET
#   sim_fill VM KEY OFFSET LENGTH BYTE   writes LENGTH copies of BYTE (0-255)
#   sim_stop                             SIGTERM, then waits for it to exit
#   sim_power_state VM                   runtime.powerState
#   sim_same_disks VM TARGET...          each disk equals its target (qemu-img compare)

sim_start() {
  local dir=$1
  shift
  SIM_INFO=$dir/vcsim-info.json
  rm -f "$SIM_INFO" "$dir/soap-cookies"   # a cookie of an earlier simulator is no login
  setsid "${V2K_VCSIM:?V2K_VCSIM must name the simulator binary}" --info "$SIM_INFO" "$@" \
    >"$dir/vcsim.log" 2>&1 </dev/null &
  SIM_PID=$!
  local i
  for i in $(seq 1 300); do
    [ -s "$SIM_INFO" ] && return 0
    if ! kill -0 "$SIM_PID" 2>/dev/null; then
      echo "simulator exited early:" >&2
      cat "$dir/vcsim.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "simulator did not start within 30s" >&2
  return 1
}

sim_info() {
  jq -r "$1" "$SIM_INFO"
}

sim_disk_flat() {
  jq -r --arg vm "$1" --argjson key "$2" \
    '.vms[] | select(.name == $vm) | .disks[] | select(.key == $key) | .flat' "$SIM_INFO"
}

sim_write() {
  local flat
  flat=$(sim_disk_flat "$1" "$2")
  [ -n "$flat" ] || { echo "sim_write: no disk $2 on VM $1" >&2; return 1; }
  dd if="$4" of="$flat" bs=4096 seek="$3" oflag=seek_bytes conv=notrunc status=none
}

sim_fill() {
  local tmp
  tmp=$(mktemp)
  head -c "$4" /dev/zero | tr '\0' "\\$(printf '%03o' "$5")" >"$tmp"
  sim_write "$1" "$2" "$3" "$tmp"
  local rc=$?
  rm -f "$tmp"
  return $rc
}

sim_stop() {
  [ -n "${SIM_PID:-}" ] || return 0
  kill -TERM "$SIM_PID" 2>/dev/null || true
  local i
  for i in $(seq 1 100); do
    kill -0 "$SIM_PID" 2>/dev/null || break
    sleep 0.1
  done
  wait "$SIM_PID" 2>/dev/null || true
  SIM_PID=
}

# sim_soap BODY: one raw SOAP call (the method element with its _this), as a
# logged-in client over verified TLS; prints the reply.
sim_soap() {
  local jar=${SIM_INFO%/*}/soap-cookies
  local head='<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
  local tail='</soapenv:Body></soapenv:Envelope>'
  if [ ! -s "$jar" ]; then
    curl -sS --cacert "$(sim_info .cert_file)" -c "$jar" -H 'Content-Type: text/xml' \
      --data "$head<Login xmlns=\"urn:vim25\"><_this type=\"SessionManager\">SessionManager</_this><userName>$(sim_info .user)</userName><password>$(sim_info .password)</password></Login>$tail" \
      "$(sim_info .sdk)" >/dev/null
  fi
  curl -sS --cacert "$(sim_info .cert_file)" -b "$jar" -H 'Content-Type: text/xml' \
    --data "$head$1$tail" "$(sim_info .sdk)"
}

# sim_snapshot_names VM: the names of a VM's snapshots, one per line.
sim_snapshot_names() {
  local moref
  moref=$(jq -r --arg vm "$1" '.vms[] | select(.name == $vm) | .moref' "$SIM_INFO")
  sim_soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">propertyCollector</_this><specSet><propSet><type>VirtualMachine</type><pathSet>snapshot</pathSet></propSet><objectSet><obj type=\"VirtualMachine\">$moref</obj></objectSet></specSet><options/></RetrievePropertiesEx>" |
    grep -o '</vm><name>[^<]*</name>' | sed 's/<[^>]*>//g'
}

# sim_set_cbt VM true|false: ReconfigVM_Task changeTrackingEnabled, behind the tool's back.
sim_set_cbt() {
  local moref
  moref=$(jq -r --arg vm "$1" '.vms[] | select(.name == $vm) | .moref' "$SIM_INFO")
  sim_soap "<ReconfigVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$moref</_this><spec><changeTrackingEnabled>$2</changeTrackingEnabled></spec></ReconfigVM_Task>" >/dev/null
}

# sim_power_state VM: runtime.powerState of the simulator's VM.
sim_power_state() {
  local moref
  moref=$(jq -r --arg vm "$1" '.vms[] | select(.name == $vm) | .moref' "$SIM_INFO")
  sim_soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">propertyCollector</_this><specSet><propSet><type>VirtualMachine</type><pathSet>runtime.powerState</pathSet></propSet><objectSet><obj type=\"VirtualMachine\">$moref</obj></objectSet></specSet><options/></RetrievePropertiesEx>" |
    grep -o '<val[^>]*>[a-zA-Z]*</val>' | sed 's/<[^>]*>//g'
}

# sim_same_disks VM TARGET...: each disk's flat file equals the target of
# the same index (qemu-img compare, so qcow2 and raw both work).
sim_same_disks() {
  local vm=$1 i=0 flat fmt
  shift
  for t in "$@"; do
    flat=$(jq -r --arg vm "$vm" --argjson i "$i" '.vms[] | select(.name == $vm) | .disks[$i].flat' "$SIM_INFO")
    case "$t" in *.qcow2) fmt=qcow2 ;; *) fmt=raw ;; esac
    qemu-img compare -q -f raw -F "$fmt" "$flat" "$t" || return 1
    i=$((i + 1))
  done
}
