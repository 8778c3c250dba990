#!/bin/sh
# Applies the host settings that connection-scale tests need (see `npx tickwire host-check`), where this user is
# allowed to: sysctls need root; a limit above the hard open-file limit needs root too. Prints each change and
# whether it took; changes nothing that is already at least the target. Not persistent across reboots: copy the
# printed sysctl lines into /etc/sysctl.d/ for that.
#
#   sudo load/tune-host.sh [connections]      (default 100000)
set -u
TARGET=${1:-100000}
case "$TARGET" in ''|*[!0-9]*) echo "usage: $0 [connections]" >&2; exit 2 ;; esac
FILES=$((TARGET * 2 + 4096))

raise() { # raise KEY MIN [VALUE]: set sysctl KEY to VALUE (default MIN) when below MIN
  key=$1; min=$2; value=${3:-$2}
  path=/proc/sys/$(echo "$key" | tr . /)
  [ -r "$path" ] || { echo "skip  $key (not on this host)"; return; }
  current=$(cut -f1 "$path" | awk '{print $1}')
  if [ "$current" -ge "$min" ] 2>/dev/null; then echo "ok    $key = $(cat "$path" | tr '\t' ' ')"; return; fi
  if sysctl -qw "$key=$value" 2>/dev/null; then echo "set   $key = $value"; else echo "FAIL  $key = $value (needs root): sysctl -w $key=\"$value\""; fi
}

raise fs.nr_open "$FILES"
raise fs.file-max "$FILES"
raise net.core.somaxconn 8192
raise net.ipv4.tcp_max_syn_backlog 8192
raise net.ipv4.tcp_tw_reuse 1
# The ephemeral range: its low end must be low enough to give each source address plenty of ports.
low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 0)
if [ "${low:-0}" -gt 10000 ]; then
  if sysctl -qw net.ipv4.ip_local_port_range="10000 65000" 2>/dev/null; then echo "set   net.ipv4.ip_local_port_range = 10000 65000"
  else echo "FAIL  net.ipv4.ip_local_port_range (needs root): sysctl -w net.ipv4.ip_local_port_range=\"10000 65000\""; fi
else echo "ok    net.ipv4.ip_local_port_range = $(cat /proc/sys/net/ipv4/ip_local_port_range | tr '\t' ' ')"; fi

# Open files for this shell and what it starts: the soft limit up to the hard one, the hard one if root may.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$FILES" ]; then
  if ulimit -Hn "$FILES" 2>/dev/null; then echo "set   hard open files = $FILES (this shell)"; hard=$FILES
  else echo "FAIL  hard open files stay $hard: one process holds about $((hard - 256)) sockets; use several server processes and load workers (tickwire host-check says how many)"; fi
fi
ulimit -Sn "$hard" 2>/dev/null && echo "set   soft open files = $hard (this shell; run the server and the load tool from it, or source this script)"
echo "Loopback source addresses need no setup on Linux: all of 127.0.0.0/8 answers on lo."
