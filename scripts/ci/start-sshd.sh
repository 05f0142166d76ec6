#!/usr/bin/env bash
# Start an OpenSSH server on 127.0.0.1 for the SSH/SFTP tests, without systemd.
#
# Prerequisites: run as root; openssh-server is installed (CI does
#   apt-get install -y --no-install-recommends openssh-server
# before calling this script; this script installs nothing).
#
# Environment:
#   SSHD_DIR   state folder: keys, sshd_config, pid file, log  (default /tmp/xpm-sshd)
#   SSHD_PORT  port on 127.0.0.1                               (default 2222)
#   SSHD_WAIT  seconds to wait for a working login             (default 15)
#   SSHD_BIN   sshd executable, absolute path                  (default /usr/sbin/sshd)
#
# Idempotent: keys are generated only when missing, the client key is authorised for
# root only once, and sshd is started only if the one recorded in $SSHD_DIR/sshd.pid is
# not running (if it is running and the configuration changed, it is told to reload).
#
# On success, stdout is exactly one line that can be given to `export`:
#   XPM_TEST_SSH_HOST=127.0.0.1 XPM_TEST_SSH_PORT=2222 XPM_TEST_SSH_USER=root XPM_TEST_SSH_KEY=/tmp/xpm-sshd/client_key
# Errors go to stderr. Stop the server with: kill "$(cat "$SSHD_DIR/sshd.pid")"
set -euo pipefail

D=${SSHD_DIR:-/tmp/xpm-sshd}
PORT=${SSHD_PORT:-2222}
WAIT=${SSHD_WAIT:-15}
SSHD=${SSHD_BIN:-/usr/sbin/sshd}
HOST=127.0.0.1
USER_NAME=root

die() { echo "start-sshd: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (sshd needs /run/sshd and reads root's authorized_keys)"
[ -x "$SSHD" ] || die "$SSHD not found: install openssh-server first"
command -v ssh >/dev/null || die "ssh client not found: install openssh-client"
command -v ssh-keygen >/dev/null || die "ssh-keygen not found: install openssh-client"
case "$PORT" in ''|*[!0-9]*) die "SSHD_PORT must be a number, got '$PORT'";; esac
case "$D" in /*) ;; *) die "SSHD_DIR must be an absolute path, got '$D'";; esac

mkdir -p "$D"
chmod 700 "$D"

# Serialise concurrent callers (e.g. several pytest workers starting the server at once).
exec 9>"$D/.lock"
if command -v flock >/dev/null; then
    flock -w 60 9 || die "timed out waiting for the lock $D/.lock"
fi

# Privilege separation directory: missing when no sshd service was ever started.
mkdir -p /run/sshd
chmod 755 /run/sshd

[ -f "$D/ssh_host_ed25519_key" ] ||
    ssh-keygen -q -t ed25519 -N '' -C xpm-test-host -f "$D/ssh_host_ed25519_key" </dev/null
[ -f "$D/client_key" ] || ssh-keygen -q -t ed25519 -N '' -C xpm-test-client -f "$D/client_key" </dev/null
[ -f "$D/client_key.pub" ] || ssh-keygen -y -f "$D/client_key" >"$D/client_key.pub"

# Authorise the client key for root (sshd's StrictModes wants these permissions).
home=$(getent passwd "$USER_NAME" | cut -d: -f6)
[ -n "$home" ] || die "no home folder for $USER_NAME"
mkdir -p "$home/.ssh"
chmod 700 "$home/.ssh"
touch "$home/.ssh/authorized_keys"
chmod 600 "$home/.ssh/authorized_keys"
pub=$(cat "$D/client_key.pub")
grep -qxF "$pub" "$home/.ssh/authorized_keys" || printf '%s\n' "$pub" >>"$home/.ssh/authorized_keys"

# A known_hosts file for clients that want strict host key checking.
printf '[%s]:%s %s\n' "$HOST" "$PORT" "$(cut -d' ' -f1-2 "$D/ssh_host_ed25519_key.pub")" >"$D/known_hosts"

cat >"$D/sshd_config.new" <<CONF
# Written by scripts/ci/start-sshd.sh
Port $PORT
ListenAddress $HOST
HostKey $D/ssh_host_ed25519_key
PidFile $D/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile .ssh/authorized_keys
StrictModes yes
UseDNS no
# sshfs opens up to 10 channels per connection, and parallel test workers open many connections.
MaxSessions 64
MaxStartups 64:30:128
Subsystem sftp internal-sftp
LogLevel INFO
CONF
"$SSHD" -t -f "$D/sshd_config.new" || die "sshd rejected the configuration $D/sshd_config.new"

changed=1
if [ -f "$D/sshd_config" ] && cmp -s "$D/sshd_config" "$D/sshd_config.new"; then
    changed=0
fi
mv -f "$D/sshd_config.new" "$D/sshd_config"

running_pid() {
    # Prints the pid of the sshd recorded in the pid file, if that process is alive and is sshd.
    local pid
    [ -s "$D/sshd.pid" ] || return 1
    pid=$(cat "$D/sshd.pid")
    case "$pid" in ''|*[!0-9]*) return 1;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q sshd || return 1
    echo "$pid"
}

if pid=$(running_pid); then
    if [ "$changed" -eq 1 ]; then
        echo "start-sshd: configuration changed, reloading sshd (pid $pid)" >&2
        kill -HUP "$pid"   # sshd re-executes itself and re-reads its configuration
        sleep 0.2
    fi
else
    rm -f "$D/sshd.pid"
    # Daemonizes; writes its pid to $D/sshd.pid; logs to $D/sshd.log.
    "$SSHD" -f "$D/sshd_config" -E "$D/sshd.log" 9>&- || {
        echo "start-sshd: sshd failed to start; log $D/sshd.log:" >&2
        tail -n 30 "$D/sshd.log" >&2 || true
        exit 1
    }
fi

ssh_ok() {
    ssh -i "$D/client_key" -p "$PORT" \
        -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=2 \
        -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$D/known_hosts" -o GlobalKnownHostsFile=/dev/null \
        -o LogLevel=ERROR \
        "$USER_NAME@$HOST" true </dev/null 2>"$D/ssh-probe.err"
}

fail_wait() {
    echo "start-sshd: $1" >&2
    echo "--- last ssh error:" >&2
    cat "$D/ssh-probe.err" >&2 2>/dev/null || true
    echo "--- sshd pid file: $(cat "$D/sshd.pid" 2>/dev/null || echo missing)" >&2
    echo "--- $D/sshd.log (last 30 lines):" >&2
    tail -n 30 "$D/sshd.log" >&2 2>/dev/null || echo "(no log)" >&2
    exit 1
}

start=$SECONDS
deadline=$((start + WAIT))
until ssh_ok; do
    # sshd daemonizes before binding: a bind failure only shows as a dead or absent daemon.
    if [ "$SECONDS" -ge $((start + 2)) ] && ! running_pid >/dev/null; then
        fail_wait "sshd is not running (see its log below)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        fail_wait "cannot log in as $USER_NAME@$HOST:$PORT with $D/client_key after ${WAIT}s"
    fi
    sleep 0.1
done
rm -f "$D/ssh-probe.err"

echo "XPM_TEST_SSH_HOST=$HOST XPM_TEST_SSH_PORT=$PORT XPM_TEST_SSH_USER=$USER_NAME XPM_TEST_SSH_KEY=$D/client_key"
