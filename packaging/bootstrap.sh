#!/usr/bin/env bash
# Installs the Debian packages that dynamo needs to build, test and run, and
# only those that are missing: a second run does nothing (no apt-get update,
# no reinstall). Used by run.sh and test.sh; either source it and call
# dynamo_bootstrap, or run it directly.
#
#   packaging/bootstrap.sh          install what is missing
#   DYNAMO_SKIP_BOOTSTRAP=1 ...     skip the package check altogether
#
# Works as root, or as a user who may use sudo.

# One list, one package a line: add new dependencies here.
DYNAMO_DEBIAN_PACKAGES=(
  build-essential
  cmake
  pkg-config
  ccache
  libzmq3-dev
  cppzmq-dev
  libmsgpack-cxx-dev
  libboost-program-options-dev
  libboost-dev
  libgtest-dev
  libgmock-dev
  libbenchmark-dev
  libssl-dev
  zlib1g-dev
  nlohmann-json3-dev
  libcpp-httplib-dev
  python3
  python3-zmq
  python3-msgpack
  libhiredis-dev
  redis-server
  redis-tools
  python3-redis
  mariadb-server
  mariadb-client
  libmysqlcppconn-dev
  iptables
  valgrind
  lintian
  rpm
  rpmlint
  gnupg
)

# What only the test command needs besides: clang with libFuzzer and its
# sanitizer runtimes, for the fuzz targets (tests/fuzz). test.sh appends it
# to DYNAMO_DEBIAN_PACKAGES before it calls dynamo_bootstrap.
DYNAMO_TEST_PACKAGES=(
  clang-14
  libclang-rt-14-dev
)

# Prints the packages of DYNAMO_DEBIAN_PACKAGES that are not installed, one a line.
dynamo_missing_packages() {
  local pkg status
  for pkg in "${DYNAMO_DEBIAN_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != ii* ]]; then
      printf '%s\n' "$pkg"
    fi
  done
}

# Installs the missing packages (apt-get update first, only if any are missing).
dynamo_bootstrap() {
  if [[ "${DYNAMO_SKIP_BOOTSTRAP:-0}" == 1 ]]; then
    echo "bootstrap: DYNAMO_SKIP_BOOTSTRAP=1, not checking Debian packages"
    return 0
  fi
  if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: this is not a Debian-like system (no dpkg-query/apt-get);" \
      "install these packages by hand: ${DYNAMO_DEBIAN_PACKAGES[*]}" >&2
    return 1
  fi

  local missing=()
  mapfile -t missing < <(dynamo_missing_packages)
  if ((${#missing[@]} == 0)); then
    echo "bootstrap: all ${#DYNAMO_DEBIAN_PACKAGES[@]} Debian packages are installed"
    return 0
  fi

  local -a sudo=()
  if ((EUID != 0)); then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "bootstrap: missing packages (${missing[*]}) and not root, and sudo is not" \
        "installed; as root run: apt-get install ${missing[*]}" >&2
      return 1
    fi
    sudo=(sudo)
  fi

  echo "bootstrap: installing missing Debian packages: ${missing[*]}"
  # DPkg::Lock::Timeout waits for another apt/dpkg (e.g. unattended upgrades)
  # instead of failing at once.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=300 update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}" \
    </dev/null

  mapfile -t missing < <(dynamo_missing_packages)
  if ((${#missing[@]} != 0)); then
    echo "bootstrap: still missing after apt-get install: ${missing[*]}" >&2
    return 1
  fi
  echo "bootstrap: done"
}

# Run directly (not sourced): do the work.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  dynamo_bootstrap
fi
