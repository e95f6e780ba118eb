#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the console's browser tests
# when they are missing (the README's test command and CI call this).
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
echo "installing chromium and chromium-driver for the browser tests"
sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq chromium chromium-driver >/dev/null
