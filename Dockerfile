# Redis with the presence module loaded: docker build -t presence . && docker run -p 6379:6379 presence
# The base images are build arguments, so the same file builds on other Rust or Redis images.
# REDIS_IMAGE: the official Redis image, Debian variant. scripts/container-test builds and
# smoke-tests this file on redis:8.2-bookworm (the default: the newest Redis 8 line whose
# images are still Debian 12, like the Rust stage; the 8.4 and 8.6 images moved to Debian 13)
# and on redis:7.0.15-bookworm (--build-arg REDIS_IMAGE=redis:7.0.15-bookworm). The module
# itself runs on Redis 7.0 or later and Valkey 8.1.
ARG RUST_IMAGE=rust:1-bookworm
ARG REDIS_IMAGE=redis:8.2-bookworm

# --- build: the module in release ------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
# bindgen (through redis-module) needs libclang.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libclang-dev clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
# Fetch and build the locked dependencies in a layer of their own, against empty files in place
# of the workspace's sources, so that a change of the sources rebuilds only the module.
COPY Cargo.toml Cargo.lock ./
COPY core/Cargo.toml core/Cargo.toml
COPY test-support/Cargo.toml test-support/Cargo.toml
RUN mkdir -p src benches core/src test-support/src \
    && touch src/lib.rs benches/presence.rs core/src/lib.rs test-support/src/lib.rs \
    && cargo build --release --locked --lib
COPY core core
COPY test-support test-support
COPY src src
COPY benches benches
# The workspace's own crates are built again, from the sources: cleaned first, because the copied
# files can be older than the build of the empty ones, which cargo would take as up to date.
# The module is installed executable (mode 755): Redis refuses to load a module without it.
RUN cargo clean --release -p redis-presence -p presence-core \
 && cargo build --release --locked --lib \
 && install -m 755 target/release/libredis_presence.so /libredis_presence.so

# --- runtime: the Redis image with the module and its redis.conf ------------------------------
FROM ${REDIS_IMAGE}
# Not in /usr/local/lib/redis/modules: the entrypoint of the Redis 8 images loads every module
# in that directory (the ones the image bundles: search, JSON, time series, probabilistic) with
# --loadmodule, so a copy there would be loaded a second time after redis.conf's loadmodule, and
# the server would refuse to start. Here only redis.conf loads it; on Redis 8 the bundled
# modules are loaded beside it.
COPY --from=build /libredis_presence.so /usr/local/lib/presence/libredis_presence.so
COPY docker/redis.conf /usr/local/etc/redis/redis.conf
# The official image creates the redis user (uid 999) and its /data volume; the server runs as
# that user, not as root.
WORKDIR /data
USER redis
EXPOSE 6379
# Healthy when the module answers, not only the server. With a password (requirepass, or the
# default user's in an aclfile), pass it in REDISCLI_AUTH (docker run -e REDISCLI_AUTH=…);
# with another --port, override the check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD redis-cli PRESENCE.COUNT healthcheck | grep -Eq '^[0-9]+$' || exit 1
CMD ["redis-server", "/usr/local/etc/redis/redis.conf"]
