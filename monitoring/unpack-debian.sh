#!/usr/bin/env bash
# unpack-debian.sh PACKAGE DEST: Debian's package, downloaded (apt-get download) and unpacked
# (dpkg -x) into DEST, so its binaries run from the checkout without installing a service.
set -euo pipefail
package="$1" dest="$2"
debs="$(dirname "$dest")/debs"
mkdir -p "$debs"
cd "$debs"
if ! ls "${package}"_*.deb >/dev/null 2>&1; then
  apt-get download "$package" 2>/dev/null || { apt-get update -qq && apt-get download "$package"; }
fi
cd - >/dev/null
rm -rf "$dest"
dpkg -x "$(ls "$debs/${package}"_*.deb | head -1)" "$dest"
echo "Unpacked $(basename "$(ls "$debs/${package}"_*.deb | head -1)") into $dest"
# Debian builds Alertmanager to read its default notification templates from this fixed path.
templates=/usr/share/prometheus/alertmanager
if [ -d "$dest$templates" ] && [ ! -f "$templates/default.tmpl" ]; then
  if mkdir -p "$templates" 2>/dev/null && cp "$dest$templates"/*.tmpl "$templates"/; then
    echo "Copied Alertmanager's default templates to $templates (Debian's binary reads them there)"
  else
    echo "Alertmanager needs its templates in $templates: copy $dest$templates/*.tmpl there as root" >&2
    exit 1
  fi
fi
