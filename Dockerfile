# PowerHive: one image for every daemon (apid, discoverd, pollerd,
# telemetryd) and hivectl; docker-compose.yml picks the command per service.
#
#   docker-compose build                       (Debian 12's docker-compose 1.29)
#   docker-compose up -d --scale pollerd=4
#
# Stage 1 builds the tree with Debian 12's packages, as `make` does on a
# host. Stage 2 is what runs: the binaries, the dashboard, the shared
# libraries they link, curl and ss (iproute2) for the health checks,
# sqlite3 for online backups (docs/operations.md) and stunnel4 for the
# `https` service (systemd-standalone-sysusers satisfies its sysusers
# dependency without all of systemd) — no compiler, no
# headers, no apt lists. It runs as the unprivileged user powerhive
# (uid/gid 10001, fixed so that a rebuilt image still owns the database
# volume). /run/powerhive (0700, powerhive's) is where apid's ipc:// bus
# sockets go; docker-compose.yml shares it between the containers as the
# volume powerhive-bus, which starts as a copy of it (owner and mode).
#
# Nothing is pulled but `FROM debian:12`; a machine that cannot reach a
# registry can make that image itself (tests/compose/engine.sh base does,
# with debootstrap). RUN steps reach the Debian archive, so with an engine
# that has no bridge network build with `--network host` (the test does).

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make pkg-config libnng-dev libcurl4-openssl-dev libsqlite3-dev \
      libjansson-dev libcivetweb-dev libmodbus-dev libmbedtls-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY libhive ./libhive
COPY apid ./apid
COPY discoverd ./discoverd
COPY pollerd ./pollerd
COPY telemetryd ./telemetryd
COPY hivectl ./hivectl
# `make all` builds the daemons and hivectl: no package installs, no tests
# (tests/ is not in the context, so no simulator either).
RUN make -j"$(nproc)" all \
 && for p in apid discoverd pollerd telemetryd hivectl; do \
      test -x "bin/$p" || { echo "bin/$p was not built"; exit 1; }; done \
 && strip bin/apid bin/discoverd bin/pollerd bin/telemetryd bin/hivectl

FROM debian:12
ARG POWERHIVE_UID=10001
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libnng1 libcurl4 libsqlite3-0 libjansson4 libcivetweb1 libmodbus5 libmbedcrypto7 \
      ca-certificates curl sqlite3 iproute2 \
      stunnel4 systemd-standalone-sysusers \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && groupadd --system --gid "$POWERHIVE_UID" powerhive \
 && useradd --system --uid "$POWERHIVE_UID" --gid powerhive --no-create-home \
      --home-dir /var/lib/powerhive --shell /usr/sbin/nologin powerhive \
 && install -d -o powerhive -g powerhive -m 0700 /var/lib/powerhive \
 && install -d -o powerhive -g powerhive -m 0700 /run/powerhive
COPY --from=build /src/bin/apid /src/bin/discoverd /src/bin/pollerd /src/bin/telemetryd \
     /src/bin/hivectl /usr/local/bin/
COPY etc/docker/healthcheck.sh /usr/local/bin/powerhive-healthcheck
COPY etc/docker/https.sh /usr/local/bin/powerhive-https
COPY web /usr/share/powerhive/web
COPY etc/powerhive.json etc/powerhive.compose.json etc/powerhive.compose-apid.json \
     etc/powerhive.compose-discoverd.json /etc/powerhive/
USER powerhive
# No VOLUME here: every container would get an anonymous volume, left
# behind by each scale-down. apid's database is the compose file's named
# volume; alone, run it with `-v powerhive-data:/var/lib/powerhive`.
WORKDIR /var/lib/powerhive
ENV POWERHIVE_CONFIG=/etc/powerhive/powerhive.compose-apid.json
EXPOSE 8080
# The compose file sets each service's command and health check; alone the
# image is apid.
CMD ["apid"]
