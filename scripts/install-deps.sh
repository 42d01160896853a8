#!/usr/bin/env bash
# Installs what building and testing sso-bridge needs on Debian 12, only when missing:
# the C libraries samael/xmlsec link against, redis-server, SimpleSAMLphp (the test IdP) with
# the PHP extensions it needs but does not pull in, Debian's chromium for the browser tests, and
# the npm packages of the test RP and of the Chromium harness (playwright-core, which never
# downloads a browser: it drives /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(pkg-config libssl-dev libxml2-dev libxmlsec1-dev libclang-dev)
if [[ "${1:-}" != "--runtime" ]]; then
  packages+=(redis-server simplesamlphp php-cli php8.2-xml php8.2-mbstring xmlsec1 openssl python3)
  # Headless Chromium for tests/e2e_chromium.rs; a font so its screenshots show text.
  packages+=(chromium fonts-dejavu-core)
  # Node may come from elsewhere than Debian; what matters is that the commands exist.
  command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  # simplesamlphp pulls in apache2: forbid service starts so nothing takes port 80.
  created_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  $SUDO apt-get update -q
  # With recommends: SimpleSAMLphp's PHP modules and Chromium's libraries come that way.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
  if [[ -n "$created_policy" ]]; then
    $SUDO rm -f /usr/sbin/policy-rc.d
  fi
fi

if [[ "${1:-}" != "--runtime" ]]; then
  # The relying party that plays Langfuse: openid-client v5, as next-auth v4 uses.
  if [[ ! -d tests/support/rp/node_modules/openid-client ]]; then
    npm ci --prefix tests/support/rp --no-audit --no-fund --loglevel=error
  fi
  # The Chromium harness: playwright-core only (no `playwright` package, no browser download).
  if [[ ! -d tests/support/chromium/node_modules/playwright-core ]]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
      npm ci --prefix tests/support/chromium --no-audit --no-fund --loglevel=error
  fi
fi
