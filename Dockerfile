# sfmtls in a container: docker build -t sfmtls . && docker run -p 8443:8443 -p 8444:8444 sfmtls
# Both stages install packages with scripts/install-deps, the script CI runs.
# The programs link the fast wolfSSL build statically (-DSFMTLS_WOLFSSL=fast:
# Debian's wolfssl source package with SP/x86_64 assembly and AES-NI, built by
# scripts/build-wolfssl in its own layer, so it is rebuilt only when the
# Debian version or the script changes).

FROM debian:12-slim AS build
WORKDIR /src
ENV SFMTLS_CACHE_DIR=/opt/sfmtls-cache
COPY scripts/install-deps scripts/build-wolfssl scripts/
# Keeps the package lists: build-wolfssl runs apt-get source.
RUN scripts/install-deps --fast-wolfssl
RUN scripts/build-wolfssl --no-install-deps
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSFMTLS_WOLFSSL=fast \
 && cmake --build build -j"$(nproc)" --target sfmtls-server sfmtls-ca

FROM debian:12-slim
COPY scripts/install-deps /usr/local/lib/sfmtls/install-deps
# --fast-wolfssl: no libwolfssl35, the programs carry their wolfSSL.
RUN /usr/local/lib/sfmtls/install-deps --runtime --fast-wolfssl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/sfmtls --create-home sfmtls
COPY --from=build /src/build/server/sfmtls-server /src/build/ca/sfmtls-ca /usr/local/bin/
COPY fixtures /usr/share/sfmtls/fixtures
ENV SFMTLS_FIXTURES=/usr/share/sfmtls/fixtures/default-org.json \
    SFMTLS_STATE_DIR=/var/lib/sfmtls \
    SFMTLS_BIND=0.0.0.0
USER sfmtls
VOLUME /var/lib/sfmtls
EXPOSE 8443 8444
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
  CMD curl -fsS --cacert /var/lib/sfmtls/ca.pem https://localhost:8444/__admin/health || exit 1
ENTRYPOINT ["sfmtls-server"]
