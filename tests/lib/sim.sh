# Helpers to start, query and stop the vCenter simulator and to write guest
# data into its disks. Source this file; it needs V2K_VCSIM (the binary).
#   sim_start DIR [simulator flags...]   starts it, sets SIM_INFO and SIM_PID
#   sim_info JQ-EXPR                     reads the info JSON
#   sim_disk_flat VM KEY                 the flat file of a VM's disk
#   sim_write VM KEY OFFSET FILE         writes FILE into the disk at OFFSET
#   sim_fill VM KEY OFFSET LENGTH BYTE   writes LENGTH copies of BYTE (0-255)
#   sim_stop                             SIGTERM, then waits for it to exit

sim_start() {
  local dir=$1
  shift
  SIM_INFO=$dir/vcsim-info.json
  rm -f "$SIM_INFO"
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
