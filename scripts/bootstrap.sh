#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the pinned dependencies; a no-op when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PYTHON=$candidate; break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "Python 3.11 est requis (introuvable sous les noms python3.11, python3, python)." >&2
  exit 1
fi

# Debian packages: Chromium for the portal's browser tests, MapServer for WMS/WFS (mapserv,
# run by the catalog as resident FastCGI processes, or as CGI; setpriv from util-linux),
# GDAL's command-line tools for the OGC client tests, PostGIS beside the machine's PostgreSQL.
# Root installs them; CI runs as root.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v mapserv >/dev/null 2>&1 || missing+=(cgi-mapserver mapserver-bin)
command -v ogrinfo >/dev/null 2>&1 || missing+=(gdal-bin)
# PostGIS 3 for PostgreSQL 15 (the server of 127.0.0.1:5432), for the PostGIS backend's tests
[ -f /usr/share/postgresql/15/extension/postgis.control ] || missing+=(postgresql-15-postgis-3)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installation des paquets Debian : ${missing[*]}…"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Compose 1.29 validates docker-compose.yml against the Compose specification with no
# engine; without its recommended docker.io (no engine runs here).
if ! command -v docker-compose >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installation du paquet Debian docker-compose…"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi

# QGIS 3.22 (Python bindings and data providers), the communes' desktop GIS, as a client of
# WMS, WFS and OGC API Features in tests/test_qgis.py; it runs under Debian's Python.
if ! /usr/bin/python3 -c 'import qgis.core' >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installation des paquets Debian python3-qgis et qgis-providers…"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-qgis qgis-providers >/dev/null
fi

# pycsw (CSW 2.0.2) in an environment of its own: pycsw 2.6 pins an OWSLib older than the
# catalog's. Rebuilt from scratch when requirements-pycsw.lock changes, a no-op otherwise.
pycsw_venv=var/pycsw-venv
pycsw_wanted=$(cat requirements-pycsw.lock | sha256sum | cut -d' ' -f1)
if [ ! -x "$pycsw_venv/bin/python" ] || [ "$(cat "$pycsw_venv/.installed" 2>/dev/null)" != "$pycsw_wanted" ]; then
  echo "Installation de pycsw dans $pycsw_venv…"
  rm -rf "$pycsw_venv"
  mkdir -p var
  "$PYTHON" -m venv "$pycsw_venv"
  "$pycsw_venv/bin/python" -m pip install --quiet --upgrade pip
  "$pycsw_venv/bin/python" -m pip install --quiet -r requirements-pycsw.lock
  echo "$pycsw_wanted" > "$pycsw_venv/.installed"
fi

stamp=.venv/.installed
wanted=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi
echo "Installation de l'environnement Python dans .venv (quelques minutes la première fois)…"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.lock
.venv/bin/python -m pip install --quiet --no-deps -e . 2>/dev/null
echo "$wanted" > "$stamp"
