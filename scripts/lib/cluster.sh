# shellcheck shell=bash
# A local Docker Swarm cluster on this one machine, for the tests and the benchmarks: each node
# is a dockerd in a network namespace of its own, its veth joined to the others' by a bridge in
# one more namespace; node 1 is the Swarm manager and serves Debian's `docker-registry`, which
# holds the images the platform runs so that every node can pull them. Only loopback and these
# namespaces carry traffic; the machine's own dockerd is never touched (images are copied out
# of it with `docker save`).
#
# Sourced by scripts/cluster after scripts/lib/docker.sh, scripts/lib/images.sh and
# scripts/lib/traefik.sh.
#
#   cluster_up N       make (or reuse) a cluster of N nodes with the registry, the images and
#                      Traefik (the container paas-traefik on node 1)
#   cluster_down       remove everything cluster_up made
#   cluster_status     each node's role, state, availability and address; the registry
#   cluster_healthy N  whether a complete cluster of N nodes runs
#   cluster_start_node N  node N back after it went away, as a host that reboots
#
# Knobs: PAAS_CLUSTER_NAME (default paascl: namespaces paascl-1…, paascl-br, sockets
#        /run/paascl-1.sock…), PAAS_CLUSTER_SUBNET (first three octets of the cluster's /24,
#        default 10.231.0: node i is .i, the host .254, the registry node 1's :5000),
#        PAAS_CLUSTER_MANAGERS (how many nodes join as managers, default 1; an odd number keeps
#        a Raft majority), PAAS_CLUSTER_IMAGES (what is pushed into the registry).

PAAS_CLUSTER_NAME="${PAAS_CLUSTER_NAME:-paascl}"
PAAS_CLUSTER_SUBNET="${PAAS_CLUSTER_SUBNET:-10.231.0}"
PAAS_CLUSTER_MANAGERS="${PAAS_CLUSTER_MANAGERS:-1}"
PAAS_CLUSTER_IMAGES="${PAAS_CLUSTER_IMAGES:-$PAAS_BASE_IMAGE $PAAS_DEBIAN_IMAGE $PAAS_POSTGRES_IMAGE $PAAS_REDIS_IMAGE}"

cluster_data="/var/lib/$PAAS_CLUSTER_NAME"
cluster_run="/run/$PAAS_CLUSTER_NAME"
cluster_bridge_ns="$PAAS_CLUSTER_NAME-br"
cluster_host_link="$PAAS_CLUSTER_NAME-h"
cluster_registry="$PAAS_CLUSTER_SUBNET.1:5000"

cluster_check_knobs() {
    [[ "$PAAS_CLUSTER_NAME" =~ ^[a-z][a-z0-9]{0,11}$ ]] ||
        paas_die "PAAS_CLUSTER_NAME must be 1-12 lowercase letters and digits (it names network interfaces)" ||
        return 1
    [[ "$PAAS_CLUSTER_SUBNET" =~ ^10\.([0-9]{1,3})\.([0-9]{1,3})$ ]] ||
        paas_die "PAAS_CLUSTER_SUBNET must be three octets in 10.0.0.0/8, e.g. 10.231.0" || return 1
    [[ "$PAAS_CLUSTER_MANAGERS" =~ ^[1-9]$ ]] ||
        paas_die "PAAS_CLUSTER_MANAGERS must be 1 to 9" || return 1
}

cluster_ns() { # node number → its network namespace
    printf '%s-%s\n' "$PAAS_CLUSTER_NAME" "$1"
}

cluster_address() { # node number → its address
    printf '%s.%s\n' "$PAAS_CLUSTER_SUBNET" "$1"
}

cluster_socket() { # node number → its dockerd's socket
    printf '/run/%s.sock\n' "$(cluster_ns "$1")"
}

cluster_docker() { # node number, docker arguments...
    local node=$1
    shift
    docker -H "unix://$(cluster_socket "$node")" "$@"
}

# How many nodes the cluster on this machine was made with (empty: none was).
cluster_size() {
    cat "$cluster_data/size" 2>/dev/null || true
}

cluster_in_ns() { # namespace, command...
    local ns=$1
    shift
    nsenter --net="/run/netns/$ns" "$@"
}

cluster_healthy() { # nodes
    local nodes=$1 node
    [ "$(cluster_size)" = "$nodes" ] || return 1
    for node in $(seq 1 "$nodes"); do
        cluster_dockerd_answers "$node" || return 1
    done
    cluster_all_ready "$nodes" 2>/dev/null && cluster_registry_answers
}

cluster_registry_answers() {
    cluster_in_ns "$(cluster_ns 1)" curl -sf -o /dev/null --max-time 5 "http://$cluster_registry/v2/"
}

# Whether anything of a cluster is on this machine (namespaces, the host link, state dirs).
cluster_leftovers() {
    [ -e "$cluster_data" ] || [ -e "$cluster_run" ] ||
        ip netns list 2>/dev/null | grep -q "^$PAAS_CLUSTER_NAME-" ||
        ip link show "$cluster_host_link" >/dev/null 2>&1
}

cluster_up() { # nodes
    local nodes=$1
    cluster_check_knobs || return 1
    [[ "$nodes" =~ ^[1-9]$ ]] || paas_die "the cluster has 1 to 9 nodes, not '$nodes'" || return 1
    [ "$PAAS_CLUSTER_MANAGERS" -le "$nodes" ] ||
        paas_die "PAAS_CLUSTER_MANAGERS ($PAAS_CLUSTER_MANAGERS) is more than the $nodes nodes" ||
        return 1
    if cluster_healthy "$nodes"; then
        paas_say "A cluster of $nodes nodes runs already; pushing the images again"
        cluster_push_images && cluster_traefik
        return
    fi
    if cluster_leftovers; then
        paas_say "Removing the incomplete or differently sized cluster first"
        cluster_down || return 1
    fi
    cluster_tools || return 1
    # From here on, a failure leaves a half-made cluster: remove it rather than leave it.
    if ! cluster_make "$nodes"; then
        paas_say "Making the cluster failed; removing what was made (logs were in $cluster_data)"
        cluster_show_logs "$nodes"
        cluster_down
        return 1
    fi
    paas_say "Cluster of $nodes nodes is up (scripts/cluster status; scripts/cluster down)"
}

cluster_tools() {
    local missing=()
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
    if [ ${#missing[@]} -gt 0 ]; then
        paas_say "Installing ${missing[*]} (apt-get)"
        paas_apt_install "${missing[@]}" || paas_die "could not install ${missing[*]}" || return 1
    fi
    ensure_docker && ensure_base_image && ensure_debian_image && ensure_addon_images
}

cluster_make() { # nodes
    local nodes=$1 node
    mkdir -p "$cluster_data" "$cluster_run" || return 1
    echo "$nodes" >"$cluster_data/size"
    cluster_network "$nodes" || return 1
    for node in $(seq 1 "$nodes"); do
        cluster_start_dockerd "$node" || return 1
    done
    for node in $(seq 1 "$nodes"); do
        cluster_wait_dockerd "$node" || return 1
    done
    cluster_swarm "$nodes" || return 1
    cluster_start_registry || return 1
    cluster_push_images || return 1
    cluster_traefik
}

# One namespace per node and one holding the bridge; each node's eth0 is a veth whose peer is
# a port of the bridge; the host gets a port too (it reaches the registry and the nodes).
cluster_network() { # nodes
    local nodes=$1 node ns
    paas_say "Network: bridge namespace $cluster_bridge_ns, $PAAS_CLUSTER_SUBNET.0/24, host at $PAAS_CLUSTER_SUBNET.254"
    ip netns add "$cluster_bridge_ns" || return 1
    ip -n "$cluster_bridge_ns" link set lo up || return 1
    ip -n "$cluster_bridge_ns" link add br0 type bridge || return 1
    ip -n "$cluster_bridge_ns" link set br0 up || return 1
    for node in $(seq 1 "$nodes"); do
        ns=$(cluster_ns "$node")
        ip netns add "$ns" || return 1
        ip -n "$ns" link set lo up || return 1
        ip -n "$cluster_bridge_ns" link add "n$node" type veth peer name eth0 netns "$ns" || return 1
        ip -n "$cluster_bridge_ns" link set "n$node" master br0 up || return 1
        ip -n "$ns" addr add "$(cluster_address "$node")/24" dev eth0 || return 1
        ip -n "$ns" link set eth0 up || return 1
    done
    ip link add "$cluster_host_link" type veth peer name host netns "$cluster_bridge_ns" || return 1
    ip -n "$cluster_bridge_ns" link set host master br0 up || return 1
    ip addr add "$PAAS_CLUSTER_SUBNET.254/24" dev "$cluster_host_link" || return 1
    ip link set "$cluster_host_link" up
}

# dockerd entered into the node's network namespace with nsenter (`ip netns exec` remounts
# /sys, and dockerd then fails with "Devices cgroup isn't mounted"), in a UTS namespace of its
# own so that each node has its own hostname, which Swarm names the node by.
cluster_start_dockerd() { # node
    local node=$1 ns dir run
    ns=$(cluster_ns "$node")
    dir="$cluster_data/$node"
    run="$cluster_run/$node"
    mkdir -p "$dir/data" "$run" || return 1
    # Bridges and overlays inside a node hand out their own pool, away from the cluster's /24.
    cat >"$dir/daemon.json" <<JSON || return 1
{
  "insecure-registries": ["$cluster_registry"],
  "default-address-pools": [{"base": "10.232.0.0/16", "size": 24}],
  "bip": "10.233.$node.1/24",
  "log-driver": "json-file",
  "log-opts": {"max-size": "10m"}
}
JSON
    paas_say "Starting dockerd of node $node ($ns, $(cluster_address "$node"), unix://$(cluster_socket "$node"))"
    # shellcheck disable=SC2016 # expanded by the inner sh
    setsid nohup nsenter --net="/run/netns/$ns" unshare --uts sh -c \
        'hostname "$1"; shift; exec "$@"' sh "$ns" \
        dockerd --data-root "$dir/data" --exec-root "$run/exec" \
        -H "unix://$(cluster_socket "$node")" --pidfile "$run/dockerd.pid" \
        --config-file "$dir/daemon.json" >>"$dir/dockerd.log" 2>&1 </dev/null 9>&- &
}

# Node N back after it went away (its dockerd stopped or killed, its link cut), as a host that
# reboots: the link up, its dockerd started again on the same data (it finds the containerd the
# killed one left), Ready in the swarm again. Swarm then stops the tasks it already ran
# elsewhere; nothing moves back until the next deploy.
cluster_start_node() { # node
    local node=$1 ns
    cluster_check_knobs || return 1
    [[ "$node" =~ ^[1-9]$ ]] && [ "$node" -le "$(cluster_size)" ] ||
        paas_die "the cluster $PAAS_CLUSTER_NAME has no node '$node'" || return 1
    ns=$(cluster_ns "$node")
    paas_say "Node $node's link up"
    cluster_in_ns "$ns" ip link set eth0 up || return 1
    if ! cluster_dockerd_answers "$node"; then
        cluster_start_dockerd "$node" && cluster_wait_dockerd "$node" || return 1
    fi
    cluster_wait 60 "node $node is not Ready in the swarm after 60 s" cluster_node_ready "$node"
}

cluster_node_ready() { # node
    [ "$(cluster_docker 1 node inspect -f '{{.Status.State}}' "$(cluster_ns "$1")" 2>/dev/null)" = ready ]
}

# Polls a command every 0.1 s until it succeeds; fails saying what did not happen in time.
cluster_wait() { # seconds, what, command...
    local tenths=$(($1 * 10)) what=$2 waited=0
    shift 2
    until "$@"; do
        if [ "$waited" -ge "$tenths" ]; then
            paas_die "$what"
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

cluster_dockerd_answers() { # node
    cluster_docker "$1" info >/dev/null 2>&1
}

cluster_wait_dockerd() { # node
    local node=$1
    cluster_wait 60 "dockerd of node $node did not answer within 60 s (log: $cluster_data/$node/dockerd.log)" \
        cluster_dockerd_answers "$node"
}

cluster_all_ready() { # nodes
    [ "$(cluster_docker 1 node ls --format '{{.Status}}' | grep -c '^Ready$')" = "$1" ]
}

cluster_swarm() { # nodes
    local nodes=$1 node worker_token manager_token token role
    paas_say "docker swarm init on node 1 ($(cluster_address 1):2377)"
    cluster_docker 1 swarm init --advertise-addr "$(cluster_address 1)" \
        --listen-addr "$(cluster_address 1):2377" >/dev/null || return 1
    worker_token=$(cluster_docker 1 swarm join-token -q worker) || return 1
    manager_token=$(cluster_docker 1 swarm join-token -q manager) || return 1
    for node in $(seq 2 "$nodes"); do
        if [ "$node" -le "$PAAS_CLUSTER_MANAGERS" ]; then
            role=manager token=$manager_token
        else
            role=worker token=$worker_token
        fi
        paas_say "Node $node joins as a $role"
        cluster_docker "$node" swarm join --token "$token" \
            --advertise-addr "$(cluster_address "$node")" \
            --listen-addr "$(cluster_address "$node"):2377" "$(cluster_address 1):2377" >/dev/null ||
            return 1
    done
    if ! cluster_wait 60 "not every node is Ready after 60 s" cluster_all_ready "$nodes"; then
        cluster_docker 1 node ls >&2
        return 1
    fi
}

# Debian's docker-registry on node 1's address, deleting allowed (the agent prunes old release
# images from it too), plain HTTP: every node lists it in insecure-registries.
cluster_start_registry() {
    local dir="$cluster_data/registry"
    mkdir -p "$dir/data" || return 1
    cat >"$dir/config.yml" <<YAML || return 1
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $cluster_registry
YAML
    paas_say "Starting docker-registry on $cluster_registry (node 1)"
    setsid nohup nsenter --net="/run/netns/$(cluster_ns 1)" docker-registry serve "$dir/config.yml" \
        >>"$dir/registry.log" 2>&1 </dev/null 9>&- &
    echo $! >"$cluster_run/registry.pid"
    cluster_wait 30 "docker-registry did not answer within 30 s (log: $dir/registry.log)" \
        cluster_registry_answers
}

# Each image from this machine's dockerd into node 1 (when node 1 lacks that very image), then
# pushed as <registry>/<image>; a layer the registry holds is not sent again.
cluster_push_images() {
    local image id
    for image in $PAAS_CLUSTER_IMAGES; do
        id=$(docker image inspect -f '{{.Id}}' "$image") ||
            paas_die "image $image is not on this machine's dockerd" || return 1
        if [ "$(cluster_docker 1 image inspect -f '{{.Id}}' "$image" 2>/dev/null)" != "$id" ]; then
            paas_say "Copying $image into node 1"
            docker save "$image" | cluster_docker 1 load -q >/dev/null || return 1
        fi
        paas_say "Pushing $image to $cluster_registry/$image"
        cluster_docker 1 tag "$image" "$cluster_registry/$image" || return 1
        cluster_docker 1 push -q "$cluster_registry/$image" >/dev/null || return 1
    done
}

# The real binary behind `traefik` on PATH (pyenv puts a shell script there).
cluster_traefik_binary() {
    local found
    found=$(command -v pyenv >/dev/null 2>&1 && pyenv which traefik 2>/dev/null) ||
        found=$(command -v traefik) || return 1
    readlink -f "$found"
}

# Traefik as the container paas-traefik on node 1, the manager, where the agent runs: its swarm
# provider reads the app services' labels from node 1's engine (every second), and its ports
# are node 1's: :80 for the apps, :8080 for its API and /ping. A task that went away before
# Traefik's next read has no address any more, so a connection to it hangs rather than being
# refused: after 300 ms (tasks answer a connection in well under that on a cluster's network)
# Traefik gives up and its retry goes to another task. The agent attaches it to each
# app's overlay network. A container rather than a service: Docker attaches a running container
# to an attachable overlay network but not a service's task, and changing a service's networks
# restarts its task (every app's requests dropped). The image is the static binary alone,
# built on node 1 and pushed to the registry. Its access log is its output (JSON, a line per
# request), which the agent follows through node 1's engine for the apps' router lines.
cluster_traefik() {
    local image="$cluster_registry/paas/traefik:$PAAS_TRAEFIK_VERSION" dir binary
    if ! cluster_docker 1 image inspect "$image" >/dev/null 2>&1; then
        ensure_traefik || return 1
        binary=$(cluster_traefik_binary) || paas_die "no traefik binary on PATH" || return 1
        dir=$(mktemp -d) || return 1
        cp "$binary" "$dir/traefik" &&
            printf 'FROM scratch\nCOPY traefik /traefik\nENTRYPOINT ["/traefik"]\n' >"$dir/Dockerfile" &&
            paas_say "Building $image on node 1" &&
            cluster_docker 1 build -q -t "$image" "$dir" >/dev/null
        local built=$?
        rm -rf "$dir"
        [ "$built" -eq 0 ] || return 1
        cluster_docker 1 push -q "$image" >/dev/null || return 1
    fi
    if [ "$(cluster_docker 1 inspect -f '{{.State.Running}}' paas-traefik 2>/dev/null)" != true ]; then
        cluster_docker 1 rm -f paas-traefik >/dev/null 2>&1
        paas_say "Starting Traefik (container paas-traefik on node 1: :80, API :8080)"
        cluster_docker 1 run -d -q --name paas-traefik --restart unless-stopped \
            -p 80:80 -p 8080:8080 \
            --log-opt max-size=10m --log-opt max-file=3 \
            -v "$(cluster_socket 1):/var/run/docker.sock:ro" \
            "$image" \
            --entrypoints.web.address=:80 \
            --entrypoints.traefik.address=:8080 \
            --api.insecure=true --ping=true \
            --accesslog=true --accesslog.format=json \
            --providers.swarm.endpoint=unix:///var/run/docker.sock \
            --providers.swarm.exposedByDefault=false \
            --providers.swarm.refreshSeconds=1 \
            --serversTransport.forwardingTimeouts.dialTimeout=300ms >/dev/null || return 1
    fi
    cluster_wait 60 "Traefik did not answer on $PAAS_CLUSTER_SUBNET.1:8080/ping within 60 s" \
        curl -fs -o /dev/null "http://$PAAS_CLUSTER_SUBNET.1:8080/ping"
}

cluster_show_logs() { # nodes
    local node
    for node in $(seq 1 "$1"); do
        [ -f "$cluster_data/$node/dockerd.log" ] || continue
        printf -- '--- node %s dockerd.log (last lines)\n' "$node" >&2
        tail -n 5 "$cluster_data/$node/dockerd.log" >&2
    done
}

# Stops every process left in a namespace: the dockerds (SIGTERM, so they stop their
# containers and containerd), then whatever remains (SIGKILL), then removes mounts, the
# namespaces, the host link and the state dirs.
cluster_down() {
    local ns nodes pid waited
    cluster_check_knobs || return 1
    nodes=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PAAS_CLUSTER_NAME-" || true)
    local pidfile
    for pidfile in "$cluster_run"/*/dockerd.pid "$cluster_run/registry.pid"; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null && paas_say "Stopping $(basename "$pidfile" .pid) ($pid)"
    done
    for ns in $nodes; do
        waited=0
        while [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && [ "$waited" -lt 300 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -9 "$pid" 2>/dev/null || true
        done
    done
    # Docker's mounts (overlay layers, network namespaces, shm) under the state dirs.
    local mount
    for mount in $(awk '{print $2}' /proc/mounts | grep -E "^($cluster_data|$cluster_run)/" | sort -r); do
        umount -l "$mount" 2>/dev/null || true
    done
    for ns in $nodes; do
        paas_say "Removing namespace $ns"
        ip netns delete "$ns" || return 1
    done
    if ip link show "$cluster_host_link" >/dev/null 2>&1; then
        ip link delete "$cluster_host_link" || return 1
    fi
    rm -f /run/"$PAAS_CLUSTER_NAME"-*.sock
    rm -rf "$cluster_run" "$cluster_data" || return 1
    paas_say "Cluster $PAAS_CLUSTER_NAME removed"
}

cluster_status() {
    local nodes node ns
    cluster_check_knobs || return 1
    nodes=$(cluster_size)
    if [ -z "$nodes" ]; then
        echo "no cluster (scripts/cluster up N makes one)"
        return 1
    fi
    printf '%-12s %-8s %-12s %-12s %-14s %s\n' NODE ROLE STATE AVAILABILITY ADDRESS SOCKET
    local swarm
    swarm=$(cluster_docker 1 node ls --format '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}' 2>/dev/null)
    local healthy=0
    for node in $(seq 1 "$nodes"); do
        ns=$(cluster_ns "$node")
        local line role state availability manager
        line=$(printf '%s\n' "$swarm" | awk -v host="$ns" '$1 == host')
        if ! cluster_dockerd_answers "$node"; then
            role=- state=dockerd-down availability=-
            healthy=1
        elif [ -z "$line" ]; then
            role=- state=not-joined availability=-
            healthy=1
        else
            read -r _ state availability manager <<<"$line"
            case "$manager" in Leader | Reachable | Unreachable) role=manager ;; *) role=worker ;; esac
            state=$(printf '%s' "$state" | tr '[:upper:]' '[:lower:]')
            availability=$(printf '%s' "$availability" | tr '[:upper:]' '[:lower:]')
            [ "$state" = ready ] || healthy=1
        fi
        printf '%-12s %-8s %-12s %-12s %-14s %s\n' "$ns" "$role" "$state" "$availability" \
            "$(cluster_address "$node")" "unix://$(cluster_socket "$node")"
    done
    if cluster_registry_answers; then
        echo "registry: http://$cluster_registry (up)"
    else
        echo "registry: http://$cluster_registry (not answering)"
        healthy=1
    fi
    return "$healthy"
}
