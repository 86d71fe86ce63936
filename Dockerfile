# PowerHive: one image for every daemon (apid, discoverd, pollerd,
# telemetryd); docker-compose.yml picks the command per service.
#
#   docker build -t powerhive .
#   docker compose up -d --scale pollerd=4
#
# Stage 1 builds the tree with Debian 12's packages, as `make` does on a
# host; stage 2 keeps the binaries, the dashboard and the runtime libraries.

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make pkg-config libnng-dev libcurl4-openssl-dev libsqlite3-dev \
      libjansson-dev libcivetweb-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY libhive ./libhive
COPY apid ./apid
COPY discoverd ./discoverd
COPY pollerd ./pollerd
COPY telemetryd ./telemetryd
# `make all` builds the daemons only: no package installs, no tests.
RUN make -j"$(nproc)" all \
 && for d in apid discoverd pollerd telemetryd; do test -x "bin/$d" || { echo "bin/$d was not built"; exit 1; }; done

FROM debian:12
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libnng1 libcurl4 libsqlite3-0 libjansson4 libcivetweb1 ca-certificates curl sqlite3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/powerhive --create-home --shell /usr/sbin/nologin powerhive
COPY --from=build /src/bin/apid /src/bin/discoverd /src/bin/pollerd /src/bin/telemetryd /usr/local/bin/
COPY web /usr/share/powerhive/web
COPY etc/powerhive.json etc/powerhive.compose.json etc/powerhive.compose-apid.json \
     etc/powerhive.compose-discoverd.json /etc/powerhive/
USER powerhive
WORKDIR /var/lib/powerhive
VOLUME /var/lib/powerhive
ENV POWERHIVE_CONFIG=/etc/powerhive/powerhive.compose-apid.json
EXPOSE 8080
# The compose file sets each service's command; alone the image is apid.
CMD ["apid"]
