#!/usr/bin/env bash
# Allium on separate hosts: each host is a Linux network namespace with its own address on
# 10.77.0.0/24, joined by veth pairs to a bridge that lives in its own namespace (allium-br), the way
# Raspberry Pis share a switch. The root namespace is never touched. Every role runs as its own
# process in its host, started with the CLI a user types (`node dist/src/cli/main.js ...`).
#
#   allium-netns.sh up        build the hosts and start dir, relays, web, client; print KEY=VALUE lines
#   allium-netns.sh down      stop every process in the hosts and delete the namespaces (idempotent;
#                             refuses while another live run owns them, unless --force)
#   allium-netns.sh demo      up, download a file through the network, show that direct fails, down
#   allium-netns.sh exec H .. run a command in host H (dir, relay1.., client, web)
#   allium-netns.sh cut H     take host H's link down at the bridge (a pulled cable); `uncut H` restores
#   allium-netns.sh status    list hosts, addresses and processes
#
# Environment: ALLIUM_NETNS_STATE (default /tmp/allium-netns), ALLIUM_NETNS_RELAYS (5),
# ALLIUM_NETNS_EXITS (3, the last relays), ALLIUM_NETNS_RELAY_TTL (directory --relay-ttl, 10 s),
# ALLIUM_NETNS_REFRESH (relay --refresh, 2 s), ALLIUM_NETNS_CONSENSUS_FRESH (directory
# --consensus-fresh, 10 s, where the build has it), ALLIUM_NETNS_OWNER (pid of the run that owns the hosts),
# ALLIUM_NETNS_PREFIX (namespace names, default allium-) and ALLIUM_NETNS_SUBNET (default 10.77.0), so
# two harnesses with different prefixes and subnets can run at once; ALLIUM_NETNS_ARM64_NODE (an
# aarch64 node binary, see scripts/aarch64/setup.sh) with ALLIUM_NETNS_ARM64_HOSTS (hosts that run
# it, e.g. "relay2 relay3"): those roles run on aarch64 under emulation, the Raspberry Pi's processor.
# ALLIUM_NETNS_AUTHORITIES (default 1: one directory on host dir): N > 1 runs N directory
# authorities instead, each on its own host auth1..authN, with an authority set file given to every
# relay and the client; relays serve as consensus caches (--cache-port 7100), the voting interval is
# ALLIUM_NETNS_VOTING_INTERVAL (2 s) and the consensus is valid ALLIUM_NETNS_CONSENSUS_VALID (300 s).
# ALLIUM_NETNS_SERVICE=1 adds host `service` (SUBNET.150), an onion service's machine: its nftables
# input chain drops every new inbound connection on eth0 (only loopback and replies get in), a web
# server listens on 127.0.0.1:8080 there alone (root www-service, each request's peer in its log), and
# `allium serve --to 127.0.0.1:8080` publishes it; the env lines gain SERVICE_ADDRESS (NAME.allium).
# Its directory (or authorities) then run with a short onion period and new relays on the ring.
# Needs root, iproute2, and nftables for the filter (without `nft` it falls back to prohibit routes;
# the service host needs `nft`).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CLI=$ROOT/dist/src/cli/main.js
NODE=${NODE:-$(command -v node)}
NS_PREFIX=${ALLIUM_NETNS_PREFIX:-allium-}
STATE=${ALLIUM_NETNS_STATE:-/tmp/${NS_PREFIX}netns}
RELAYS=${ALLIUM_NETNS_RELAYS:-5}
EXITS=${ALLIUM_NETNS_EXITS:-3}
TTL=${ALLIUM_NETNS_RELAY_TTL:-10}
REFRESH=${ALLIUM_NETNS_REFRESH:-2}
FRESH=${ALLIUM_NETNS_CONSENSUS_FRESH:-10}
OWNER=${ALLIUM_NETNS_OWNER:-$PPID}
LOCK=/run/lock/${NS_PREFIX}netns.lock
ARM64_NODE=${ALLIUM_NETNS_ARM64_NODE:-}
ARM64_HOSTS=" ${ALLIUM_NETNS_ARM64_HOSTS:-} "
AUTHORITIES=${ALLIUM_NETNS_AUTHORITIES:-1}
VOTING=${ALLIUM_NETNS_VOTING_INTERVAL:-2}
VALID=${ALLIUM_NETNS_CONSENSUS_VALID:-300}
CACHE_PORT=7100
SERVICE=${ALLIUM_NETNS_SERVICE:-0}
[[ $SERVICE =~ ^[01]$ ]] || { echo "netns: ALLIUM_NETNS_SERVICE must be 0 or 1" >&2; exit 1; }
[[ $AUTHORITIES =~ ^[0-9]+$ ]] && [ "$AUTHORITIES" -ge 1 ] && [ "$AUTHORITIES" -le 15 ] ||
  { echo "netns: ALLIUM_NETNS_AUTHORITIES must be 1-15" >&2; exit 1; }

[[ $NS_PREFIX =~ ^[a-z0-9]+-$ ]] || { echo "netns: ALLIUM_NETNS_PREFIX must be lowercase letters or digits and a dash" >&2; exit 1; }
BR_NS=${NS_PREFIX}br
NET=${ALLIUM_NETNS_SUBNET:-10.77.0}
DIR_PORT=7000
RELAY_PORT=9001
WEB_PORT=8080
SOCKS_PORT=9050

# Only these names are ever created or deleted, so other namespaces on the machine are safe.
STALE_RE="^${NS_PREFIX}(br|dir|auth[0-9]+|relay[0-9]+|client|web|service)\$"

log() { echo "netns: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

host_ip() {
  case $1 in
    dir) echo "$NET.2" ;;
    auth*) echo "$NET.$((50 + ${1#auth}))" ;;
    relay*) echo "$NET.$((10 + ${1#relay}))" ;;
    client) echo "$NET.100" ;;
    web) echo "$NET.200" ;;
    service) echo "$NET.150" ;;
    *) die "unknown host '$1' (hosts: dir or auth1..authN, relay1..relay$RELAYS client web service)" ;;
  esac
}
hosts() {
  if [ "$AUTHORITIES" = 1 ]; then
    echo dir
  else
    for ((i = 1; i <= AUTHORITIES; i++)); do echo "auth$i"; done
  fi
  for ((i = 1; i <= RELAYS; i++)); do echo "relay$i"; done
  echo client
  echo web
  [ "$SERVICE" = 0 ] || echo service
}
is_exit() { [ "${1#relay}" -gt $((RELAYS - EXITS)) ]; }
# The node binary a host's roles run on: the aarch64 one for ALLIUM_NETNS_ARM64_HOSTS, else this one.
node_for() { if [[ $ARM64_HOSTS == *" $1 "* ]]; then echo "$ARM64_NODE"; else echo "$NODE"; fi; }
# Emulated roles start about 15 times slower.
ready_secs() { if [[ $ARM64_HOSTS == *" $1 "* ]]; then echo $(($2 * 6)); else echo "$2"; fi; }

# ---- teardown ----

ns_list() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "$STALE_RE" || true; }

kill_ns_processes() {
  local ns pids
  for ns in $(ns_list); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] && kill -TERM $pids 2>/dev/null || true
  done
  # Roles stop within a second on SIGTERM (relays withdraw from the directory); then force.
  for _ in $(seq 1 20); do
    local left=""
    for ns in $(ns_list); do left+=$(ip netns pids "$ns" 2>/dev/null || true); done
    [ -z "$left" ] && return 0
    sleep 0.1
  done
  for ns in $(ns_list); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
  done
}

down() {
  kill_ns_processes
  local ns
  # Deleting a namespace deletes its end of each veth pair, and with it the peer.
  for ns in $(ns_list); do ip netns del "$ns" 2>/dev/null || log "could not delete namespace $ns"; done
  rm -f "$STATE/owner"
}

# ---- ownership: one run at a time owns the hosts; a dead owner's leftovers are removed ----

claim() {
  mkdir -p "$(dirname "$LOCK")"
  exec 9>"$LOCK"
  flock -w 300 9 || die "another harness run held $LOCK for 300 s"
  local other i
  for ((i = 0; i < 600; i++)); do
    other=$(cat "$STATE/owner" 2>/dev/null || true)
    if [ -z "$other" ] || [ "$other" = "$OWNER" ] || ! kill -0 "$other" 2>/dev/null; then break; fi
    [ "$i" = 0 ] && log "waiting for the run of pid $other to finish with the hosts"
    sleep 0.5
  done
  other=$(cat "$STATE/owner" 2>/dev/null || true)
  if [ -n "$other" ] && [ "$other" != "$OWNER" ] && kill -0 "$other" 2>/dev/null; then
    die "the run of pid $other still owns the hosts after 300 s"
  fi
  if [ -n "$(ns_list)" ]; then log "removing leftovers of an earlier run: $(ns_list | tr '\n' ' ')"; fi
  down
  rm -rf "$STATE"
  mkdir -p "$STATE"/{logs,pids,cmd,www}
  echo "$OWNER" >"$STATE/owner"
}

# ---- topology ----

add_host() {
  local h=$1 ns=${NS_PREFIX}$1 ip
  ip=$(host_ip "$h")
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  # Created inside the bridge namespace, with the peer moved straight into the host: the root
  # namespace never sees either end.
  ip -n "$BR_NS" link add "v-$h" type veth peer name eth0 netns "$ns"
  ip -n "$BR_NS" link set "v-$h" master br0 up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
}

filter_client_from_web() {
  local client web
  client=$(host_ip client)
  web=$(host_ip web)
  if command -v nft >/dev/null; then
    # The client host's firewall refuses to send to web; web's drops anything from the client.
    ip netns exec "${NS_PREFIX}client" nft -f - <<EOF
table inet allium {
  chain output {
    type filter hook output priority 0; policy accept;
    ip daddr $web reject with icmpx admin-prohibited
  }
}
EOF
    ip netns exec "${NS_PREFIX}web" nft -f - <<EOF
table inet allium {
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr $client drop
  }
}
EOF
    echo nftables >"$STATE/filter"
  else
    log "nft not found: filtering with prohibit routes instead (install nftables for a firewall)"
    ip -n "${NS_PREFIX}client" route add prohibit "$web/32"
    ip -n "${NS_PREFIX}web" route add prohibit "$client/32"
    echo routes >"$STATE/filter"
  fi
}

# The service host takes no connection from anyone: loopback and replies to its own connections get
# in, every other inbound packet is dropped (not refused, so a scan learns nothing either).
firewall_service() {
  command -v nft >/dev/null || die "the service host needs nftables (nft) for its firewall"
  ip netns exec "${NS_PREFIX}service" nft -f - <<EOF
table inet allium {
  chain input {
    type filter hook input priority 0; policy drop;
    iif lo accept
    ct state established,related accept
  }
}
EOF
}

# ---- processes ----

# start NAME HOST CMD...: runs CMD in HOST's namespace, its own session, output to logs/NAME.{out,err}.
start() {
  local name=$1 ns=${NS_PREFIX}$2
  shift 2
  printf '%q ' "$@" >"$STATE/cmd/$name"
  # 9>&-: the roles must not inherit the lock, or a killed run's leftovers would hold it forever.
  setsid ip netns exec "$ns" "$@" </dev/null >"$STATE/logs/$name.out" 2>"$STATE/logs/$name.err" 9>&- &
  echo $! >"$STATE/pids/$name"
}

# wait_ready NAME SECONDS: prints the process's `ready ...` line, or fails with the tail of its log.
wait_ready() {
  local name=$1 secs=$2 pid line
  pid=$(cat "$STATE/pids/$name")
  for ((i = 0; i < secs * 10; i++)); do
    line=$(grep -m1 '^ready ' "$STATE/logs/$name.out" 2>/dev/null || true)
    if [ -n "$line" ]; then
      echo "$line"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$STATE/logs/$name.err" >&2 || true
      die "$name exited before it was ready (log: $STATE/logs/$name.err)"
    fi
    sleep 0.1
  done
  tail -n 20 "$STATE/logs/$name.err" >&2 || true
  die "$name not ready within $secs s (log: $STATE/logs/$name.err)"
}
field() { sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p" <<<" $2"; }

# Count of relays in the directory's consensus, asked from the client host as the client will.
consensus_relays() {
  local first=dir
  [ "$AUTHORITIES" = 1 ] || first=auth1
  ip netns exec "${NS_PREFIX}client" curl -sS --max-time 5 "http://$(host_ip $first):$DIR_PORT/v1/consensus" |
    "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(JSON.parse(s).body).relays.length)}catch{console.log(0)}})'
}

up() {
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
  [ -f "$CLI" ] || die "$CLI not found: run 'npm run build' first"
  if [ -n "${ALLIUM_NETNS_ARM64_HOSTS:-}" ]; then
    [ -x "$ARM64_NODE" ] || die "ALLIUM_NETNS_ARM64_HOSTS needs ALLIUM_NETNS_ARM64_NODE, an aarch64 node (scripts/aarch64/setup.sh)"
    [ "$("$ARM64_NODE" -p process.arch)" = arm64 ] || die "$ARM64_NODE is not an aarch64 node"
  fi
  [ "$EXITS" -ge 1 ] && [ "$RELAYS" -ge 3 ] && [ "$EXITS" -le "$RELAYS" ] || die "need >= 3 relays and 1..RELAYS exits"
  claim
  # A failed `up` leaves nothing behind.
  trap 'log "up failed: cleaning up"; down' EXIT
  trap 'exit 130' INT TERM

  ip netns add "$BR_NS"
  ip -n "$BR_NS" link set lo up
  ip -n "$BR_NS" link add br0 type bridge
  ip -n "$BR_NS" link set br0 up
  local h
  for h in $(hosts); do add_host "$h"; done
  filter_client_from_web
  [ "$SERVICE" = 0 ] || firewall_service

  head -c $((10 * 1024 * 1024)) /dev/urandom >"$STATE/www/random10m"
  echo 'RESPONSE-MARKER-7f3a hello through the onion' >"$STATE/www/hello"
  if [ "$SERVICE" = 1 ]; then
    # Its own bytes, unlike web's: a download that matches them came from the service host.
    mkdir -p "$STATE/www-service"
    head -c $((10 * 1024 * 1024)) /dev/urandom >"$STATE/www-service/random10m"
    echo 'ONION-MARKER-5c1e hello from the onion service' >"$STATE/www-service/hello"
  fi

  local dir_ip ready key url dir_extra=()
  dir_ip=$(host_ip dir)
  # A short fresh window makes clients refetch the consensus within seconds, so they learn soon that
  # a relay is gone (older builds have no such option).
  if "$NODE" "$CLI" directory --help | grep -q -- --consensus-fresh; then dir_extra=(--consensus-fresh "$FRESH"); fi
  # The service needs onion fields in the consensus now: a short period, and the relays, all of them
  # new, on the ring at once.
  if [ "$SERVICE" = 1 ] && "$NODE" "$CLI" directory --help | grep -q -- --onion-new-relays-on-ring; then
    dir_extra+=(--onion-period 600 --onion-new-relays-on-ring)
  fi
  # How relays and the client are told whom to trust: the one directory, or the authority set.
  local trust=()
  if [ "$AUTHORITIES" = 1 ]; then
    start dir dir "$NODE" "$CLI" directory --data-dir "$STATE/data/dir" --host "$dir_ip" --port "$DIR_PORT" \
      --relay-ttl "$TTL" "${dir_extra[@]}"
    ready=$(wait_ready dir 20)
    key=$(field key "$ready")
    url=$(field url "$ready")
    trust=(--directory "$url" --directory-key "$key")
  else
    # Every authority's entry (its key made now), in one set file that every role is given.
    local entries=() set_file="$STATE/authorities.json" a
    for ((a = 1; a <= AUTHORITIES; a++)); do
      entries+=("$("$NODE" "$CLI" directory --data-dir "$STATE/data/auth$a" --host "$(host_ip "auth$a")" \
        --port "$DIR_PORT" --print-authority "auth$a")")
    done
    (
      IFS=,
      echo "{\"format\":\"allium-authorities\",\"version\":1,\"authorities\":[${entries[*]}]}"
    ) >"$set_file"
    for ((a = 1; a <= AUTHORITIES; a++)); do
      start "auth$a" "auth$a" "$NODE" "$CLI" directory --data-dir "$STATE/data/auth$a" --host "$(host_ip "auth$a")" \
        --port "$DIR_PORT" --authorities "$set_file" --voting-interval "$VOTING" --consensus-valid "$VALID" \
        --relay-ttl "$TTL" --log-level info "${dir_extra[@]}"
    done
    for ((a = 1; a <= AUTHORITIES; a++)); do
      ready=$(wait_ready "auth$a" 20)
      [ "$a" = 1 ] && key=$(field key "$ready") && url=$(field url "$ready")
      echo "AUTH_auth$a=$(field url "$ready")" >>"$STATE/env"
    done
    echo "AUTHORITIES_FILE=$set_file" >>"$STATE/env"
    trust=(--authorities "$set_file")
  fi

  # Relays get no --address: each learns its own from the directory's whoami. --host 0.0.0.0 listens
  # on the host's address; exits need --allow-private because the test subnet is a private range.
  for ((i = 1; i <= RELAYS; i++)); do
    local extra=()
    is_exit "relay$i" && extra=(--exit --allow-private)
    [ "$AUTHORITIES" = 1 ] || extra+=(--cache-port "$CACHE_PORT")
    start "relay$i" "relay$i" "$(node_for "relay$i")" "$CLI" relay "${trust[@]}" \
      --data-dir "$STATE/data/relay$i" --nickname "relay$i" --host 0.0.0.0 --port "$RELAY_PORT" \
      --refresh "$REFRESH" "${extra[@]}"
  done
  for ((i = 1; i <= RELAYS; i++)); do
    ready=$(wait_ready "relay$i" "$(ready_secs "relay$i" 30)")
    [ "$(field address "$ready")" = "$(host_ip "relay$i")" ] ||
      die "relay$i advertises $(field address "$ready"), expected $(host_ip "relay$i")"
    echo "RELAY_relay${i}=$(field address "$ready"):$(field port "$ready") id=$(field id "$ready") exit=$(field exit "$ready")" >>"$STATE/env"
    echo "PID_relay${i}=$(cat "$STATE/pids/relay$i")" >>"$STATE/env"
  done

  start web web "$NODE" "$HERE/web-server.mjs" --host "$(host_ip web)" --port "$WEB_PORT" --root "$STATE/www"
  wait_ready web 20 >/dev/null

  # The client needs every relay listed, or its first circuits would be drawn from a partial list.
  local n=0
  for _ in $(seq 1 "$(ready_secs relay$RELAYS 100)"); do
    n=$(consensus_relays || echo 0)
    [ "$n" = "$RELAYS" ] && break
    sleep 0.2
  done
  [ "$n" = "$RELAYS" ] || die "the consensus lists $n of $RELAYS relays after 20 s"

  # Debug level: the client logs each circuit's path, which the test uses to find entries and middles.
  start client client "$NODE" "$CLI" client "${trust[@]}" \
    --socks "127.0.0.1:$SOCKS_PORT" --log-level debug
  if [ "$SERVICE" = 1 ]; then
    # Started with the client, so the two get ready together. Its web server is reachable on the
    # service host's loopback only; debug level logs the service's circuits' paths.
    start service-web service "$NODE" "$HERE/web-server.mjs" --host 127.0.0.1 --port "$WEB_PORT" \
      --root "$STATE/www-service" --log-requests
    wait_ready service-web 20 >/dev/null
    start service service "$(node_for service)" "$CLI" serve --to "127.0.0.1:$WEB_PORT" "${trust[@]}" \
      --data-dir "$STATE/data/service" --log-level debug
  fi
  wait_ready client 40 >/dev/null
  if [ "$SERVICE" = 1 ]; then
    ready=$(wait_ready service "$(ready_secs service 90)")
    echo "SERVICE_ADDRESS=$(field address "$ready")" >>"$STATE/env"
    echo "SERVICE_ROOT=$STATE/www-service" >>"$STATE/env"
  fi

  {
    echo "STATE=$STATE"
    echo "DIR_URL=$url"
    echo "DIR_KEY=$key"
    echo "SOCKS=127.0.0.1:$SOCKS_PORT"
    echo "WEB_URL=http://$(host_ip web):$WEB_PORT"
    echo "FILTER=$(cat "$STATE/filter")"
    echo "RELAY_TTL=$TTL"
    echo "RELAY_REFRESH=$REFRESH"
    for h in $(hosts); do echo "HOST_$h=$(host_ip "$h")"; done
  } >>"$STATE/env"
  trap - EXIT INT TERM
  exec 9>&- # the owner file marks the hosts as ours from here on
  cat "$STATE/env"
}

demo() {
  up >/dev/null
  trap 'down' EXIT
  trap 'exit 130' INT TERM
  local web
  web=$(sed -n 's/^WEB_URL=//p' "$STATE/env")
  log "client -> web directly (must fail):"
  if ip netns exec "${NS_PREFIX}client" curl -sS --max-time 5 -o /dev/null "$web/hello"; then
    die "the client reached web directly: the filter does not work"
  fi
  log "client -> SOCKS -> 3 relays -> web, 10 MiB:"
  ip netns exec "${NS_PREFIX}client" curl -sS --fail --max-time 120 --socks5-hostname "127.0.0.1:$SOCKS_PORT" \
    -o "$STATE/got10m" -w 'netns: %{size_download} bytes in %{time_total} s\n' "$web/random10m" >&2
  if cmp -s "$STATE/got10m" "$STATE/www/random10m"; then log "byte for byte: OK"; else die "the download differs"; fi
}

status() {
  local h ns
  for h in $(hosts); do
    ns=${NS_PREFIX}$h
    ip netns list | grep -qw "$ns" || continue
    printf '%-8s %-12s %s\n' "$h" "$(host_ip "$h")" "$(ip netns pids "$ns" | tr '\n' ' ')"
  done
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  up) up ;;
  down)
    # A run that is still alive keeps its hosts, unless forced: an orphaned test must not tear down
    # the hosts of the run that came after it.
    other=$(cat "$STATE/owner" 2>/dev/null || true)
    if [ "${1:-}" != --force ] && [ -n "$other" ] && [ "$other" != "$OWNER" ] && kill -0 "$other" 2>/dev/null; then
      die "the hosts belong to the run of pid $other, which is still alive (down --force to remove them anyway)"
    fi
    down
    ;;
  demo) demo ;;
  status) status ;;
  exec)
    [ $# -ge 2 ] || die "usage: exec HOST CMD..."
    h=$1
    shift
    host_ip "$h" >/dev/null
    exec ip netns exec "${NS_PREFIX}$h" "$@"
    ;;
  cut | uncut)
    [ $# -eq 1 ] || die "usage: $cmd HOST"
    host_ip "$1" >/dev/null
    ip -n "$BR_NS" link set "v-$1" "$([ "$cmd" = cut ] && echo down || echo up)"
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
    ;;
esac
