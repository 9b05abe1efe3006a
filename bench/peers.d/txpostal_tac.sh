# shellcheck shell=bash
# txpostal all-in-one: `twistd -ny postal.tac`, every role (web, smtp, worker, cron,
# requeuer) in one Python process on one SQLite database; the worker is woken in-process
# after each commit.
# shellcheck source=txpostal.lib
source "$(dirname "${BASH_SOURCE[0]}")/txpostal.lib"

EXTRA_PEERS+=(txpostal_tac)
peer_txpostal_tac_port=2531
peer_txpostal_tac_label="txpostal postal.tac"
peer_txpostal_tac_note="$(txp_note "twistd -ny postal.tac: every role in one process")"
peer_txpostal_tac_check_cmd="$(txp_check_cmd txpostal_tac)"
PEER_TXPOSTAL_TAC_PID=""

peer_txpostal_tac_setup() {
    txp_setup txpostal_tac "$peer_txpostal_tac_port" 2541 1 1 1
}

peer_txpostal_tac_start() {
    local dir
    dir="$(txp_dir txpostal_tac)"
    pb_require_free_port "$peer_txpostal_tac_port" "txpostal_tac smtp"
    pb_require_free_port 2541 "txpostal_tac web"
    PEER_TXPOSTAL_TAC_PID="$(txp_spawn txpostal_tac stdout-tac.log "-y $TXP_SRC/postal.tac" \
        "$TXP_VENV/bin/twistd" -n --pidfile= -y "$TXP_SRC/postal.tac")"
}

peer_txpostal_tac_stop() {
    [ -n "$PEER_TXPOSTAL_TAC_PID" ] && pb_stop_pid "$PEER_TXPOSTAL_TAC_PID" "-y $TXP_SRC/postal.tac" 30
    PEER_TXPOSTAL_TAC_PID=""
}
