#!/bin/sh
# powerhive-https CONFIG — the `https` service of docker-compose.yml
# (installed in the image as /usr/local/bin/powerhive-https): stunnel in the
# foreground with CONFIG (etc/https/stunnel-compose.conf).
#
# Before stunnel starts, every `cert =` and `key =` file the config names
# must be readable: without them the service exits 1 with one line naming
# the file and what to do (docker-compose restarts it, and `docker-compose
# logs https` shows the line), and nothing listens. It never falls back
# to plain HTTP. stunnel itself then refuses a file that is not PEM.
set -u
config=${1:-/etc/powerhive/https/stunnel-compose.conf}

fail() {
	echo "powerhive-https: $*" >&2
	exit 1
}

[ -r "$config" ] || fail "cannot read the stunnel config $config"
files=$(sed -n 's/^[[:space:]]*\(cert\|key\)[[:space:]]*=[[:space:]]*\(.*[^[:space:]]\)[[:space:]]*$/\2/p' "$config")
[ -n "$files" ] || fail "$config names no cert and key"
for f in $files; do
	[ -r "$f" ] || fail "$f is missing or not readable by uid $(id -u): make the" \
		"certificate and key in the directory mounted there (POWERHIVE_HTTPS_DIR," \
		"./https by default), key mode 0600 owned by uid $(id -u) (docs/operations.md, HTTPS)"
done
exec stunnel4 "$config"
