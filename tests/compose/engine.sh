#!/bin/sh
# tests/compose/engine.sh start|base|stop — the Docker engine and the base
# image that tests/e2e/test_compose_up runs the compose deployment on.
#
#   start  a dockerd that answers: the running one, else one started here
#          with --bridge=none --iptables=false (no Docker bridge network,
#          no firewall rules: every container of the test is in the host's
#          network). Installs docker.io when there is no dockerd.
#   base   the debian:12 image the Dockerfile starts FROM: kept when
#          present, else made with debootstrap (minbase) from the Debian
#          archive this machine's apt uses, with its apt sources, and
#          `docker import`. Never pulls: CI reaches no registry. Then one
#          container runs, to prove the engine can run any.
#   stop   stops the dockerd that start started, and nothing else.
#
# Exit 0 done; 3 when no engine can run here, said on one line starting
# "engine: cannot" (the test then counts as skipped); 1 on other errors.
# Each step prints what it did and how long it took ("figure:" lines).
# Images and the build cache stay in /var/lib/docker between runs. The
# dockerd started here logs to $ENGINE_LOG (default
# /var/log/powerhive-test-dockerd.log) and is recorded in $ENGINE_MARK
# (default /run/powerhive-test-dockerd.pid): a run that was killed leaves
# it there, and the next start takes it over, so that its stop ends it.
set -u
mark=${ENGINE_MARK:-/run/powerhive-test-dockerd.pid}
log=${ENGINE_LOG:-/var/log/powerhive-test-dockerd.log}
base=debian:12
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo

say() { echo "engine: $*"; }
cannot() {
	echo "engine: cannot $*"
	exit 3
}
now() { date +%s; }

server_version() {
	timeout 10 docker version --format '{{.Server.Version}}' 2>/dev/null
}

# apt-get install, with one apt-get update when the lists are stale.
apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 && return 0
	$sudo apt-get update -qq >/dev/null 2>&1
	$sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

start() {
	t0=$(now)
	if ! command -v dockerd >/dev/null 2>&1 && ! server_version >/dev/null; then
		if [ -n "$sudo" ] && ! sudo -n true 2>/dev/null; then
			cannot "install docker.io: not root and no sudo without a password"
		fi
		say "installing docker.io (no dockerd here)"
		apt_install docker.io || cannot "install docker.io with apt-get"
		echo "figure: compose engine install docker.io s=$(($(now) - t0))"
	fi
	if v=$(server_version) && [ -n "$v" ]; then
		if [ -s "$mark" ] && [ "$(cat "/proc/$(cat "$mark")/comm" 2>/dev/null)" = dockerd ]; then
			say "dockerd $v left running by an earlier run (pid $(cat "$mark")): taken over"
		else
			say "dockerd $v already runs: using it, and leaving it running"
		fi
		return 0
	fi
	if [ -n "$sudo" ] && ! sudo -n true 2>/dev/null; then
		cannot "start dockerd: not root and no sudo without a password"
	fi
	t1=$(now)
	$sudo mkdir -p "$(dirname "$log")"
	# Its own session: a test stopped by a timeout does not take it along
	# half-way; the mark lets the next run stop it.
	$sudo sh -c "setsid dockerd --bridge=none --iptables=false --ip6tables=false \
		>>'$log' 2>&1 </dev/null & echo \$! >'$mark'"
	pid=$(cat "$mark")
	i=0
	while ! v=$(server_version) || [ -z "$v" ]; do
		if [ ! -d "/proc/$pid" ]; then
			$sudo rm -f "$mark"
			cannot "start dockerd: $(tail -n 1 "$log" 2>/dev/null)"
		fi
		i=$((i + 1))
		if [ "$i" -ge 120 ]; then
			$sudo kill "$pid" 2>/dev/null
			cannot "start dockerd: no answer within 60 s ($log)"
		fi
		sleep 0.5
	done
	say "dockerd $v started (pid $pid, --bridge=none --iptables=false, log $log)"
	echo "figure: compose engine start s=$(($(now) - t1))"
}

# The first Debian archive (path ending in /debian) this machine's apt uses.
mirror() {
	{
		sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
		sed -n 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*\).*/\2/p' \
			/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
	} | grep -m 1 '^https\{0,1\}://.*/debian/\{0,1\}$' || echo http://deb.debian.org/debian
}

# This machine's apt sources, into the root file system $1: every file
# whose every repository is a Debian one and whose keyrings $1 has (a
# third-party repository would fail apt-get update in the build). Its apt
# proxy settings too. Falls back to the archive debootstrap used.
copy_sources() {
	n=0
	rm -f "$1/etc/apt/sources.list"
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -s "$f" ] || continue
		grep -Eq '^[[:space:]]*(deb[[:space:]]|URIs:)' "$f" || continue
		grep -E '^[[:space:]]*(deb[[:space:]]|URIs:)' "$f" | grep -qv debian && continue
		ok=true
		for k in $(sed -n 's/^Signed-By:[[:space:]]*//p' "$f"); do
			[ -e "$1$k" ] || ok=false
		done
		$ok || continue
		cp "$f" "$1$f"
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || printf 'deb %s bookworm main\n' "$2" >"$1/etc/apt/sources.list"
	for f in $(grep -lis 'Acquire::.*Proxy' /etc/apt/apt.conf.d/* /etc/apt/apt.conf); do
		cp "$f" "$1/etc/apt/apt.conf.d/"
	done
}

bootstrap() {
	t0=$(now)
	if ! command -v debootstrap >/dev/null 2>&1; then
		say "installing debootstrap"
		apt_install debootstrap || { say "debootstrap could not be installed"; exit 1; }
	fi
	m=$(mirror)
	root=$(mktemp -d /var/tmp/powerhive-rootfs.XXXXXX) || exit 1
	say "bootstrapping $base: debootstrap --variant=minbase bookworm from $m"
	if ! $sudo debootstrap --variant=minbase bookworm "$root" "$m" >"$root.log" 2>&1; then
		tail -n 5 "$root.log"
		$sudo rm -rf "$root" "$root.log"
		say "debootstrap failed"
		exit 1
	fi
	t1=$(now)
	copy_sources "$root" "$m"
	$sudo rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root.log"
	$sudo tar -C "$root" -c . | docker import -c 'CMD ["bash"]' \
		-m "debootstrap --variant=minbase bookworm $m" - "$base" >/dev/null
	rc=$?
	$sudo rm -rf "$root"
	[ "$rc" -eq 0 ] || { say "docker import failed"; exit 1; }
	say "$base made here: $(docker image inspect -f '{{.Size}}' "$base" | awk '{printf "%.0f MB", $1 / 1e6}')"
	echo "figure: compose base image bootstrap s=$((t1 - t0)) import s=$(($(now) - t1))"
}

base() {
	if docker image inspect "$base" >/dev/null 2>&1; then
		say "$base present (cached)"
	else
		bootstrap
	fi
	out=$(timeout 60 docker run --rm --network none "$base" true 2>&1) ||
		cannot "run a container: $(echo "$out" | tail -n 1)"
}

stop() {
	[ -s "$mark" ] || { say "no dockerd of ours to stop"; return 0; }
	pid=$(cat "$mark")
	if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
		$sudo kill -TERM "$pid"
		i=0
		while [ -d "/proc/$pid" ] && [ "$i" -lt 60 ]; do
			sleep 0.5
			i=$((i + 1))
		done
		if [ -d "/proc/$pid" ]; then
			$sudo kill -KILL "$pid"
			say "dockerd (pid $pid) did not stop within 30 s: killed"
		else
			say "dockerd (pid $pid) stopped"
		fi
	fi
	$sudo rm -f "$mark"
}

case ${1:-} in
start) start ;;
base) base ;;
stop) stop ;;
*)
	echo "usage: $0 start|base|stop" >&2
	exit 2
	;;
esac
