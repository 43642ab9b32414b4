# Sourced by the scripts here: makes .venv with prep installed (again only when pyproject.toml
# changes), then puts .venv/bin first on PATH. Needs only Python 3.11+ and pip.
# PREP_EXTRAS picks prep's extras to install: `test` (the default: the test tools, and with them
# every other extra), `demo` (what ./scripts/demo runs) or empty for prep alone.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3}
EXTRAS=${PREP_EXTRAS-test}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: prep needs Python 3.11 or newer ($PYTHON is $("$PYTHON" -V 2>&1)); set PYTHON=" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "setting up .venv (first run only)..." >&2
    "$PYTHON" -m venv .venv
fi
spec=.
[ -n "$EXTRAS" ] && spec=".[$EXTRAS]"
stamp=.venv/.prep-installed-${EXTRAS:-prep}
want=$(cat pyproject.toml | "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    if [ -n "$EXTRAS" ]; then
        echo "installing prep and its $EXTRAS tools into .venv (first run only; a few minutes)..." >&2
    else
        echo "installing prep and what it needs into .venv (first run only; about a minute)..." >&2
    fi
    # The distribution was called `prep` before it became evolink-prep: drop that install.
    .venv/bin/python -m pip uninstall -q -y prep >/dev/null 2>&1 || true
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
    # pip's own log goes to .venv/pip-install.log; what it fetches and installs is said as it goes.
    if ! PYTHONUNBUFFERED=1 .venv/bin/python -m pip install --disable-pip-version-check --progress-bar off \
            -e "$spec" 2>&1 | tee .venv/pip-install.log \
            | awk '/^(Collecting|Installing collected|Successfully installed)/ { print "  " $0; fflush() }' >&2; then
        cat .venv/pip-install.log >&2
        echo "error: installing prep into .venv failed (log above)" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"

# apt_install PACKAGE WHAT: install a Debian package with apt once, quietly (its log in
# .venv/apt-PACKAGE.log), when the caller found its command missing. WHAT says what goes without
# it ("the browser tests will be skipped"), printed when apt cannot or may not install it.
apt_install() {
    local package=$1 what=$2
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "== apt-get install $package (first run only)" >&2
        export DEBIAN_FRONTEND=noninteractive
        if ! { apt-get install -y -qq "$package" || { apt-get update -qq && apt-get install -y -qq "$package"; }; } \
                > ".venv/apt-$package.log" 2>&1; then
            echo "note: apt could not install $package (.venv/apt-$package.log); $what" >&2
        fi
    else
        echo "note: no $package, and no apt-get as root to install it; $what" >&2
    fi
}

# fetch_old_ffmpeg: a real ffmpeg 4.2.2 (older than prep's 5.1 floor) for the version-gate test
# (tests/test_ffmpeg_version.py), taken once from the imageio-ffmpeg 0.5.1 wheel on PyPI into the
# test cache. Where pip cannot reach PyPI, that one test is skipped and says why.
fetch_old_ffmpeg() {
    local cache=${PREP_TEST_MEDIA:-$ROOT/.cache/test-media}/old-ffmpeg
    [ -x "$cache/ffmpeg-4.2.2" ] && return 0
    echo "== fetching ffmpeg 4.2.2 for the version-gate test (first run only)" >&2
    mkdir -p "$cache"
    if .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps \
            --only-binary :all: --platform manylinux2010_x86_64 "imageio-ffmpeg==0.5.1" \
            -d "$cache/wheel" > "$cache/pip.log" 2>&1 \
        && .venv/bin/python - "$cache" <<'PY'
import sys, zipfile
from pathlib import Path
cache = Path(sys.argv[1])
wheel = next((cache / "wheel").glob("imageio_ffmpeg-0.5.1-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    name = next(n for n in archive.namelist() if n.endswith("ffmpeg-linux64-v4.2.2"))
    part = cache / "ffmpeg-4.2.2.part"
    part.write_bytes(archive.read(name))
    part.chmod(0o755)
    part.replace(cache / "ffmpeg-4.2.2")
PY
    then
        rm -rf "$cache/wheel"
    else
        echo "note: could not fetch ffmpeg 4.2.2 ($cache/pip.log); its test will be skipped" >&2
    fi
}
