# Redis with the presence module loaded: docker build -t presence . && docker run -p 6379:6379 presence
# The base images are build arguments, so the same file builds on other Rust or Redis images
# (a Redis image of a version the module is tested with: 7.0 or later, or Valkey 8.1).
ARG RUST_IMAGE=rust:1-bookworm
ARG REDIS_IMAGE=redis:7.0.15-bookworm

# --- build: the module in release ------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
# bindgen (through redis-module) needs libclang.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libclang-dev clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
# Fetch the locked dependencies in a layer of their own, so that a change of the sources does
# not fetch them again.
COPY Cargo.toml Cargo.lock ./
COPY core/Cargo.toml core/Cargo.toml
COPY test-support/Cargo.toml test-support/Cargo.toml
RUN mkdir -p src benches core/src test-support/src \
    && touch src/lib.rs benches/presence.rs core/src/lib.rs test-support/src/lib.rs \
    && cargo fetch --locked
COPY core core
COPY test-support test-support
COPY src src
COPY benches benches
RUN cargo build --release --locked --lib \
 && cp target/release/libredis_presence.so /libredis_presence.so

# --- runtime: the Redis image with the module and its redis.conf ------------------------------
FROM ${REDIS_IMAGE}
COPY --from=build /libredis_presence.so /usr/local/lib/redis/modules/libredis_presence.so
COPY docker/redis.conf /usr/local/etc/redis/redis.conf
# The official image creates the redis user and its /data volume; the server runs as that user,
# not as root.
WORKDIR /data
USER redis
EXPOSE 6379
# Healthy when the module answers, not only the server. With requirepass set, pass
# REDISCLI_AUTH (docker run -e REDISCLI_AUTH=…); with another --port, override the check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD redis-cli PRESENCE.COUNT healthcheck | grep -Eq '^[0-9]+$' || exit 1
CMD ["redis-server", "/usr/local/etc/redis/redis.conf"]
