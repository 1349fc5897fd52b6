#!/usr/bin/env bash
# Installs what the bot needs into .venv, prepares the database and the demo FAQ,
# and runs the bot. With no portal in .env it talks to a local Bitrix24; chat with
# it from a second terminal: .venv/bin/python b24_emulator.py chat
set -euo pipefail
cd "$(dirname "$0")"

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
[ -f .env ] || cp .env.example .env

.venv/bin/python migrate_add_platform.py
.venv/bin/python demo_faq.py
exec .venv/bin/python b24_bot.py "$@"
