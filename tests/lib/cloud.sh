# Helpers for the fake ABLESTACK cloud (tests/cloud/fake_cloud.py). Source it.
#   cloud_start DIR [fake_cloud.py flags...]   starts it; sets CLOUD_INFO, CLOUD_PID, CLOUD_LOG
#   cloud_info JQ-EXPR                        reads its info JSON
#   cloud_state JQ-EXPR                       queries its objects (GET /_state)
#   cloud_calls                               the commands called so far, one per line
#   cloud_creds FILE                          writes a 0600 credential file for it
#   cloud_stop
cloud_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

cloud_start() {
  local dir=$1
  shift
  CLOUD_INFO=$dir/cloud-info.json
  CLOUD_LOG=$dir/cloud-requests.jsonl
  rm -f "$CLOUD_INFO" "$CLOUD_LOG"
  python3 "$cloud_lib_dir/../cloud/fake_cloud.py" --info "$CLOUD_INFO" --log "$CLOUD_LOG" "$@" \
    >"$dir/cloud.log" 2>&1 </dev/null &
  CLOUD_PID=$!
  local i
  for i in $(seq 1 100); do
    [ -s "$CLOUD_INFO" ] && return 0
    kill -0 "$CLOUD_PID" 2>/dev/null || { cat "$dir/cloud.log" >&2; return 1; }
    sleep 0.1
  done
  return 1
}

cloud_info() { jq -r "$1" "$CLOUD_INFO"; }

cloud_state() { curl -sf "$(cloud_info .url | sed 's|/client/api$||')/_state" | jq -r "$1"; }

cloud_calls() { jq -r .command "$CLOUD_LOG" 2>/dev/null; }

cloud_creds() {
  ( umask 077
    printf 'endpoint = %s\napi_key = %s\nsecret_key = %s\n' "$(cloud_info .url)" "$(cloud_info .apikey)" \
      "$(cloud_info .secretkey)" >"$1" )
}

cloud_stop() {
  [ -n "${CLOUD_PID:-}" ] || return 0
  kill "$CLOUD_PID" 2>/dev/null
  wait "$CLOUD_PID" 2>/dev/null
  CLOUD_PID=
}
