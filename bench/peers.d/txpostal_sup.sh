# shellcheck shell=bash
# txpostal under its supervisor (`postal start`, issue 7): postal-smtp, two postal-worker
# processes and postal-requeuer as children of one ProcessMonitor, one SQLite database.
# shellcheck source=txpostal.lib
source "$(dirname "${BASH_SOURCE[0]}")/txpostal.lib"

EXTRA_PEERS+=(txpostal_sup)
peer_txpostal_sup_port=2530
peer_txpostal_sup_label="txpostal supervisor smtp+2 workers"
peer_txpostal_sup_note="$(txp_note "postal start: postal-smtp, 2 x postal-worker, postal-requeuer as supervised processes")"
peer_txpostal_sup_check_cmd="$(txp_check_cmd txpostal_sup)"
PEER_TXPOSTAL_SUP_PID=""

peer_txpostal_sup_setup() {
    txp_setup txpostal_sup "$peer_txpostal_sup_port" 2540 1 2 1
}

peer_txpostal_sup_start() {
    local dir
    dir="$(txp_dir txpostal_sup)"
    pb_require_free_port "$peer_txpostal_sup_port" "txpostal_sup smtp"
    # `postal start` checks the configuration, then execs `twistd postal-supervisor --config ...`
    # (same PID), so the marker is the part both command lines share.
    PEER_TXPOSTAL_SUP_PID="$(txp_spawn txpostal_sup stdout-supervisor.log "--config $dir/postal.yml" \
        "$TXP_VENV/bin/postal" start --config "$dir/postal.yml")"
}

peer_txpostal_sup_stop() {
    local dir
    dir="$(txp_dir txpostal_sup)"
    # SIGTERM to the supervisor stops every child (each gets up to 20 s to finish in-flight work).
    [ -n "$PEER_TXPOSTAL_SUP_PID" ] && pb_stop_pid "$PEER_TXPOSTAL_SUP_PID" "--config $dir/postal.yml" 40
    PEER_TXPOSTAL_SUP_PID=""
    txp_stop_leftovers txpostal_sup
}
