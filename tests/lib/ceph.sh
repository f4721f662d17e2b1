# A one-monitor, one-OSD Ceph cluster for the tests: plain processes on
# 127.0.0.1 from Debian's packages (memstore, cephx), no mgr.
#   ceph_start DIR PORT   sets CEPH_CONF; creates pool "rbd"; returns 1, saying
#                         why on stderr, unless an RBD image can be created
#   ceph_stop DIR         OSD first, then the monitor
#   ceph_stop_mon DIR     the monitor only (to test an unreachable cluster)

ceph_start() {
  local D=$1 P=$2 fsid u s id
  mkdir -p "$D"/{mon.a,osd.0,run,log}
  fsid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$D/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$P,v1:127.0.0.1:$((P + 1))]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind port min = $((P + 10))
ms bind port max = $((P + 99))
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $D/keyring
run dir = $D/run
admin socket = $D/run/\$cluster-\$name.\$pid.asok
log file = $D/log/\$name.log
pid file = $D/run/\$name.pid
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg autoscale mode = off
mon data avail warn = 2
mon data avail crit = 1
[mon]
mon data = $D/mon.\$id
paxos propose interval = 0.1
[osd]
osd data = $D/osd.\$id
keyring = $D/osd.\$id/keyring
osd objectstore = memstore
memstore device bytes = 1073741824
osd memory target = 1073741824
CONF
  export CEPH_CONF=$D/ceph.conf
  ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$D/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$P,v1:127.0.0.1:$((P + 1))]" "$D/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring" >/dev/null 2>&1 || return 1
  ceph-mon -i a || return 1
  local i
  for i in $(seq 100); do ceph --connect-timeout 2 mon stat >/dev/null 2>&1 && break; sleep 0.2; done
  ceph --connect-timeout 2 mon stat >/dev/null 2>&1 || { echo "ceph_start: the monitor does not answer" >&2; return 1; }
  u=$(cat /proc/sys/kernel/random/uuid)
  s=$(ceph-authtool --gen-print-key)
  id=$(echo "{\"cephx_secret\": \"$s\"}" | ceph osd new "$u" -i -) || return 1
  printf '[osd.%s]\n\tkey = %s\n' "$id" "$s" >"$D/osd.$id/keyring"
  ceph-osd -i "$id" --mkfs --key "$s" --osd-uuid "$u" >/dev/null 2>&1 || return 1
  ceph-osd -i "$id" >/dev/null 2>&1 || return 1
  for i in $(seq 150); do ceph osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1' && break; sleep 0.2; done
  ceph osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1' || { echo "ceph_start: the OSD did not come up" >&2; return 1; }
  ceph osd pool create rbd 8 8 replicated >/dev/null 2>&1 || return 1
  rbd pool init rbd >/dev/null 2>&1 || return 1
  rbd create --size 1M rbd/probe >/dev/null 2>&1 && rbd rm rbd/probe >/dev/null 2>&1 ||
    { echo "ceph_start: cannot create an RBD image" >&2; return 1; }
}

ceph_kill() {  # ceph_kill DIR NAME
  local pidf=$1/run/$2.pid pid i
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf")
  case "$(cat /proc/$pid/comm 2>/dev/null)" in ceph-mon|ceph-osd|ceph-mgr) ;; *) return 0 ;; esac
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 100); do
    local st
    st=$(awk '{print $3}' /proc/$pid/stat 2>/dev/null)
    [ -z "$st" ] || [ "$st" = Z ] && break
    sleep 0.1
  done
}

ceph_stop_mon() {
  ceph_kill "$1" mon.a
}

ceph_stop() {
  ceph_kill "$1" osd.0
  ceph_kill "$1" mon.a
}
