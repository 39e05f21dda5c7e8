#!/bin/sh
# Install or update group-ipt from this folder, with no internet.
#   sh install.sh              installs into ~/.local/share/group-ipt-app
#   sh install.sh FOLDER       installs into FOLDER
# The data (database, backups) stay in the data folder (~/.local/share/group-ipt, or
# $GROUP_IPT_DATA); updating keeps them, backs the database up first and migrates it.
set -eu

KIT=$(cd "$(dirname "$0")" && pwd)
TARGET=${1:-${XDG_DATA_HOME:-$HOME/.local/share}/group-ipt-app}
PYTHON=${PYTHON:-python3}

say() { printf '%s\n' "$*"; }
fail() { printf 'group-ipt install: %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 || fail "Python 3 is not installed. Install python3 (3.11 or newer) and python3-venv first."
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || fail "Python 3.11 or newer is needed; this is $("$PYTHON" --version 2>&1)."
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
  || fail "Python's venv module is missing. On Debian or Ubuntu install the package python3-venv."

mkdir -p "$TARGET"
VENV="$TARGET/venv"
OLD=""
if [ -x "$VENV/bin/group-ipt" ]; then
  OLD=$("$VENV/bin/group-ipt" --version 2>/dev/null | sed 's/.*version //') || OLD=""
  say "Updating group-ipt ${OLD:-?} in $TARGET"
else
  say "Installing group-ipt into $TARGET"
  "$PYTHON" -m venv "$VENV" || fail "could not make the folder $VENV"
fi

# --isolated: ignore any pip settings of this computer; --no-index: never try the internet.
"$VENV/bin/python" -m pip --isolated --disable-pip-version-check install --quiet --no-index \
  --find-links "$KIT/wheels" --upgrade group-ipt \
  || fail "pip could not install from $KIT/wheels (is the kit complete, and made for this Python?)"

# Back up, migrate and say what changed (nothing happens when there is no database yet).
"$VENV/bin/group-ipt" upgrade || fail "the data could not be upgraded; it is unchanged (see the message above)."

# The launcher: a menu entry and a desktop icon that start the app and open the browser.
APPS=${XDG_DATA_HOME:-$HOME/.local/share}/applications
mkdir -p "$APPS"
cat > "$APPS/group-ipt.desktop" <<DESKTOP
[Desktop Entry]
Type=Application
Name=group-ipt
Comment=Group IPT programme (opens in the web browser)
Exec="$VENV/bin/group-ipt" serve --open
Terminal=true
Categories=Office;
DESKTOP
chmod +x "$APPS/group-ipt.desktop"
DESKTOP_DIR=$(xdg-user-dir DESKTOP 2>/dev/null || printf '%s' "$HOME/Desktop")
if [ -d "$DESKTOP_DIR" ]; then
  cp "$APPS/group-ipt.desktop" "$DESKTOP_DIR/group-ipt.desktop"
  chmod +x "$DESKTOP_DIR/group-ipt.desktop"
fi

NEW=$("$VENV/bin/group-ipt" --version | sed 's/.*version //')
say "group-ipt $NEW is installed. Start it from the group-ipt icon, or run: $VENV/bin/group-ipt serve --open"
if [ ! -f "${GROUP_IPT_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/group-ipt}/group-ipt.db" ]; then
  say "First time on this laptop: create the database with"
  say "  $VENV/bin/group-ipt init --admin YOUR-NAME"
  say "then connect it to the central office with 'group-ipt sync setup' (ask your coordinator)."
fi
