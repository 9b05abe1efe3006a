# shellcheck shell=bash
# txpostal with separate roles, as in production on one host without the supervisor:
# `twistd -n postal-smtp`, `twistd -n postal-worker` and `twistd -n postal-requeuer`,
# three processes on one SQLite database.  Measured by ../shared/peers-bench/run-all.sh
# with PB_PEERS_DIR=bench/peers.d (see docs/benchmarks.md).
# shellcheck source=txpostal.lib
source "$(dirname "${BASH_SOURCE[0]}")/txpostal.lib"

EXTRA_PEERS+=(txpostal)
peer_txpostal_port=2529
peer_txpostal_label="txpostal smtp+worker"
peer_txpostal_note="$(txp_note "separate processes: postal-smtp, postal-worker (1), postal-requeuer")"
peer_txpostal_check_cmd="$(txp_check_cmd txpostal)"
PEER_TXPOSTAL_PIDS=()

peer_txpostal_setup() {
    txp_setup txpostal "$peer_txpostal_port" 2539 1 1 1
}

peer_txpostal_start() {
    local dir role
    dir="$(txp_dir txpostal)"
    pb_require_free_port "$peer_txpostal_port" "txpostal smtp"
    PEER_TXPOSTAL_PIDS=()
    for role in requeuer worker smtp; do
        PEER_TXPOSTAL_PIDS+=("$(txp_role txpostal "$role")"$'\t'"postal-$role --config $dir/postal.yml")
    done
}

peer_txpostal_stop() {
    [ "${#PEER_TXPOSTAL_PIDS[@]}" -gt 0 ] && txp_stop_pids "${PEER_TXPOSTAL_PIDS[@]}"
    PEER_TXPOSTAL_PIDS=()
}
