#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian/Ubuntu machine, then the node modules.
# Safe to run again: each step is skipped when its tool is already there.
#   --test   also what the test suite needs: headless Chromium (for the run-report page test) and a
#            running Redis (for the queue tests; REDIS_URL, default redis://127.0.0.1:6379)
set -euo pipefail
for_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) for_tests=1 ;;
    *) echo "setup: unknown option $arg (known: --test)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need_node_major=20
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt "$need_node_major" ]; then
  echo "setup: Node.js $need_node_major or newer is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  echo "setup: installing ffmpeg"
  apt_install ffmpeg
fi
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
  echo "setup: installing fonts-dejavu-core (text on the emulator's clips)"
  apt_install fonts-dejavu-core fontconfig
fi

if [ "$for_tests" = 1 ] && [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "setup: installing chromium (headless browser for the report page test; about 110 MB)"
  apt_install chromium
fi

if [ "$for_tests" = 1 ] && ! command -v redis-server >/dev/null; then
  # The bucket-run test starts (and restarts) a redis-server of its own.
  echo "setup: installing redis-server (for the queue and store tests)"
  apt_install redis-server
fi

if [ "$for_tests" = 1 ]; then
  # The queue tests need a real Redis; start one unless something already answers.
  redis_url="${REDIS_URL:-redis://127.0.0.1:6379}"
  if ! command -v redis-cli >/dev/null || ! redis-cli -u "$redis_url" ping >/dev/null 2>&1; then
    if ! command -v redis-server >/dev/null; then
      echo "setup: installing redis-server (for the queue tests)"
      apt_install redis-server
    fi
    if ! redis-cli -u "$redis_url" ping >/dev/null 2>&1; then
      port="${redis_url##*:}"; port="${port%%/*}"
      echo "setup: starting redis-server on 127.0.0.1:${port}"
      redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no >/dev/null
      for _ in 1 2 3 4 5 6 7 8 9 10; do redis-cli -u "$redis_url" ping >/dev/null 2>&1 && break; sleep 0.3; done
    fi
  fi
fi

if ! command -v pnpm >/dev/null; then
  echo "setup: installing pnpm"
  # corepack's signature check fails against this registry mirror; npm's global install works everywhere.
  npm install -g pnpm@12.21.0 >/dev/null 2>&1 || as_root npm install -g pnpm@12.21.0 >/dev/null 2>&1 || {
    COREPACK_INTEGRITY_KEYS=0 corepack enable && COREPACK_INTEGRITY_KEYS=0 corepack prepare pnpm@12.21.0 --activate
  }
fi

pnpm install --frozen-lockfile
