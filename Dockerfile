# syntax=docker/dockerfile:1
# lightsout container image: the daemon alone, or as a sidecar (deploy/kubernetes/).
#
#   docker build -t lightsout .
#   docker run --read-only -v lightsout-state:/var/lib/lightsout \
#       -v ./lightsout.toml:/etc/lightsout/lightsout.toml:ro lightsout
#
# Base images are pinned by digest (tag kept for readers). To move to newer ones, resolve the
# tags again with `docker buildx imagetools inspect IMAGE:TAG` and replace both digests; CI
# (tests/packaging/check_dockerfile.py) checks that every FROM is pinned, that the build
# command is the Makefile's `release` target, and the points below. No engine runs in CI, so
# the image itself is built and tried by hand (docs/operations.md, "Container").

# ---- build: the same command as `make release` ----------------------------------------------
FROM docker.io/library/rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
WORKDIR /src
# rust-toolchain.toml stays out: the image, pinned by digest, is already the 1.95 toolchain,
# and a copy of the file would make rustup download another one inside the build.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
COPY benches ./benches
COPY tests ./tests
COPY config ./config
COPY deploy ./deploy
RUN cargo build --release --locked \
 && install -D -m 0755 target/release/lightsout /out/usr/local/bin/lightsout \
 && install -d -m 0750 /out/var/lib/lightsout

# ---- runtime: glibc, CA certificates, tzdata, a nonroot user, no shell ---------------------
# distroless/cc has libc and libgcc_s (the binary links them), /etc/ssl/certs and
# /usr/share/zoneinfo. The binary also carries jiff's bundled time-zone database as a
# fallback (Cargo.toml: jiff feature tzdb-bundle-always), so schedules work on any base.
FROM gcr.io/distroless/cc-debian12@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f

LABEL org.opencontainers.image.title="lightsout" \
      org.opencontainers.image.description="Stops idle and off-hours Azure Machine Learning compute instances, and shows the money it saves" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.documentation="docs/operations.md" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12"

COPY --from=build /out/usr/local/bin/lightsout /usr/local/bin/lightsout
# State (SQLite) lives on a volume: the root filesystem may be read-only.
COPY --from=build --chown=65532:65532 /out/var/lib/lightsout /var/lib/lightsout
COPY --chown=0:0 config/lightsout.example.toml /etc/lightsout/lightsout.toml
VOLUME ["/var/lib/lightsout"]

# nonroot (65532) of distroless; numeric so Kubernetes' runAsNonRoot can check it.
USER 65532:65532

# Logs: --log-format auto writes JSON lines to stderr when it is not a terminal.
ENV LIGHTSOUT_CONFIG=/etc/lightsout/lightsout.toml

# Smoke: the binary runs in this image (libraries present).
RUN ["/usr/local/bin/lightsout", "--version"]

# /metrics, /healthz, /readyz, /v1/status. Set [http] listen = "0.0.0.0:9464" in the config
# to reach them from outside the container.
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=2m --retries=3 \
    CMD ["/usr/local/bin/lightsout", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/lightsout"]
CMD ["run"]
