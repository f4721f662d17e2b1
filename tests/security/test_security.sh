#!/bin/bash
# Security: the vCenter password never reaches a child's argv or environment,
# the workdir, the events or the logs (a scan of /proc during a whole run,
# then of every file the run wrote); TLS verification is on by default and
# refuses a wrong CA, an expired certificate, a wrong host and a thumbprint
# mismatch, with --insecure the only way around (and a warning event); no
# shell anywhere in src/; restrictive file modes; planted symlinks are not
# followed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
. "$here/../lib/vddk-standin.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
jqe() { jq -e "$1" >/dev/null; }
tmp=$(mktemp -d /tmp/v2k-security-XXXXXX)
trap '[ -n "${scanner:-}" ] && kill $scanner 2>/dev/null; sim_stop; pkill -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT
# Shell metacharacters on purpose (the stand-in plugin quotes it with '').
PW='S3cr3t-pa55:w0rd_$(x)`y`;z'
USER_NAME='migrator@vsphere.local'
printf '%s\n' "$PW" >"$tmp/pw"
chmod 600 "$tmp/pw"
sim_start "$tmp" --user "$USER_NAME" --password "$PW" \
  --vm sec --disk scsi:16M --disk sata:8M --nic "VM Network" --power on || exit 1
DS=$(sim_info '.datastores.LocalDS_0')
v2k() {
  "$BIN" "$@" --vcenter "$(sim_info .url)" --username "$USER_NAME" --password-file "$tmp/pw" \
    --ca-file "$(sim_info .cert_file)"
}
make_vddk_standin "$tmp/standin.sh" "$DS" "$PW" "$tmp/ev"
make_vddk_libdir "$tmp"

# ---- the password during a whole run (vddk transport: nbdkit gets it) ----
sim_fill sec 2000 0 4000000 7
( while :; do
    for p in /proc/[0-9]*; do
      c=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)
      case "$c" in *v2k-vcsim*|"") continue ;; esac   # the simulator is given its password
      if tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qF -- "$PW" ||
         tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qF -- "$PW"; then
        echo "LEAK in ${p#/proc/}: $c"
      fi
    done
    sleep 0.05
  done ) >"$tmp/procscan" 2>/dev/null &
scanner=$!
out=$(V2K_NBDKIT_VDDK_PLUGIN="sh $tmp/standin.sh" v2k --workdir "$tmp/w" run --vm sec --dst "$tmp/dst" \
      --vddk-libdir "$tmp" --libvirt-uri test:///default --net-default bridge:br0 --convert off \
      --incr-interval 0 --max-incr 1 --json)
rc=$?
kill $scanner 2>/dev/null
wait $scanner 2>/dev/null
scanner=
check "a whole run over the vddk transport: exit 0" test $rc -eq 0
check "nbdkit got the password, through a descriptor" grep -qx ok "$tmp/ev/password"
check "no process ever had the password in its argv or environment" test ! -s "$tmp/procscan"
check "no file the run wrote holds the password" bash -c "! grep -rqF -- \"\$(cat '$tmp/pw')\" '$tmp/w' '$tmp/dst'"
check "the user name is recorded only as given" bash -c "! grep -rq 'password' '$tmp/w/manifest.json'"

# ---- file modes ----
check "workdir 0700" test "$(stat -c %a "$tmp/w")" = 700
check "manifest.json 0600" test "$(stat -c %a "$tmp/w/manifest.json")" = 600
check "events.log 0600" test "$(stat -c %a "$tmp/w/events.log")" = 600
check "artifacts/ 0700 and the domain XML 0600" \
  test "$(stat -c %a "$tmp/w/artifacts")/$(stat -c %a "$tmp/w/artifacts/sec.xml")" = 700/600
W2=$(v2k init --vm sec --dst "$tmp/dst2" --workdir-root "$tmp/root" --transport file --datastore-map "LocalDS_0=$DS")
check "a default workdir is 0700 under a root of its own" test "$(stat -c %a "$W2")" = 700

# ---- planted symlinks are not followed ----
echo "not yours" >"$tmp/victim"
rm -f "$W2/events.log"
ln -s "$tmp/victim" "$W2/events.log"
v2k --workdir "$W2" cbt enable >/dev/null 2>&1
check "an events.log symlink is not written through" test "$(cat "$tmp/victim")" = "not yours"
mv "$W2/manifest.json" "$W2/manifest.real"
ln -s "$W2/manifest.real" "$W2/manifest.json"
out=$(v2k --workdir "$W2" cbt status 2>&1)
check "a manifest.json symlink is refused (exit 3)" test $? -eq 3
check "the refusal names the file" grep -q "manifest.json" <<<"$out"

# ---- TLS ----
out=$("$BIN" init --vm sec --dst "$tmp/x" --workdir-root "$tmp/x" --transport file --datastore-map "LocalDS_0=$DS" --vcenter "$(sim_info .url)" \
      --username "$USER_NAME" --password-file "$tmp/pw" 2>&1)
rc=$?
check "verification is on by default: an unknown CA is refused (exit 5)" test $rc -eq 5
check "the refusal shows the thumbprints to pin" grep -q "SHA-256" <<<"$out"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/other.key" -out "$tmp/other.pem" -days 1 \
  -subj /CN=other >/dev/null 2>&1
out=$("$BIN" init --vm sec --dst "$tmp/x" --workdir-root "$tmp/x" --transport file --datastore-map "LocalDS_0=$DS" --vcenter "$(sim_info .url)" \
      --username "$USER_NAME" --password-file "$tmp/pw" --ca-file "$tmp/other.pem" 2>&1)
check "a wrong CA is refused (exit 5)" test $? -eq 5
out=$("$BIN" init --vm sec --dst "$tmp/x" --workdir-root "$tmp/x" --transport file --datastore-map "LocalDS_0=$DS" --vcenter "$(sim_info .url)" \
      --username "$USER_NAME" --password-file "$tmp/pw" --thumbprint 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33 2>&1)
check "a thumbprint mismatch is refused (exit 5)" test $? -eq 5
out=$("$BIN" --json init --vm sec --dst "$tmp/x" --workdir-root "$tmp/ins" --transport file --datastore-map "LocalDS_0=$DS" --vcenter "$(sim_info .url)" \
      --username "$USER_NAME" --password-file "$tmp/pw" --insecure 2>&1)
check "--insecure is the only way around" jqe .ok <<<"$out"
check "--insecure leaves a warning event" grep -q '"level":"warn".*"event":"tls.insecure"' "$(jq -r .workdir <<<"$out")/events.log"
sim_stop
sim_start "$tmp" --cert-expired --user "$USER_NAME" --password "$PW" --vm sec --disk scsi:8M || exit 1
DS=$(sim_info '.datastores.LocalDS_0')
out=$(v2k init --vm sec --dst "$tmp/x" --workdir-root "$tmp/x" --transport file --datastore-map "LocalDS_0=$DS" 2>&1)
rc=$?
check "an expired certificate is refused (exit 5)" test $rc -eq 5
check "the refusal says it expired" grep -qi "expired" <<<"$out"
sim_stop
# A wrong host: the certificate names 127.0.0.1, ::1 and localhost; the
# simulator listens on 127.0.0.2, an address of its own that every Linux
# machine has (all of 127.0.0.0/8 is the loopback), and the client asks for
# that address. The same CA file, so only the name can be the reason.
ip=127.0.0.2
if sim_start "$tmp" --listen "$ip:0" --user "$USER_NAME" --password "$PW" --vm sec --disk scsi:8M; then
  port=$(sim_info .url | sed 's/.*://')
  DS=$(sim_info '.datastores.LocalDS_0')
  out=$("$BIN" init --vm sec --dst "$tmp/x" --workdir-root "$tmp/x" --transport file --datastore-map "LocalDS_0=$DS" --vcenter "https://$ip:$port" \
        --username "$USER_NAME" --password-file "$tmp/pw" --ca-file "$(sim_info .cert_file)" 2>&1)
  rc=$?
  check "a certificate for another host is refused (exit 5)" test $rc -eq 5
  check "the refusal names the host mismatch" grep -qi "host name" <<<"$out"
  check "... and the address asked for" grep -qF "$ip" <<<"$out"
else
  skip "a certificate for another host is refused" "the simulator cannot listen on $ip here"
fi

# ---- no shell anywhere ----
# grep exits 2 on a missing tree: only its "no match" (1) passes.
check "no system() or popen() in src/" bash -c "test -f '$root/src/main.c' && { grep -rnE '\\b(system|popen)[[:space:]]*\\(' '$root/src'; test \$? -eq 1; }"
check "no sh -c in src/" bash -c "test -f '$root/src/main.c' && { grep -rnE '\"/bin/sh\"|\"sh\", \"-c\"' '$root/src'; test \$? -eq 1; }"
tap_done
