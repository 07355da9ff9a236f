#!/usr/bin/env bash
# Builds a current librdkafka (2.12 or later; Debian 12 ships 2.0.2) into a cache outside
# the clone, and is quick when it is there already. scripts/setup.sh --rdkafka-current
# runs it; CMake uses the result with -DDURO_RDKAFKA_PREFIX=<prefix> (the system
# librdkafka stays the default build).
#
# Where it comes from: Debian's source package `librdkafka` of sid (unstable), from this
# machine's own Debian archive, with apt-get alone. The archive's address is read at run
# time from the machine's apt sources (/etc/apt/sources.list.d/*.sources or
# /etc/apt/sources.list: the entry of this machine's release); a private apt state holds
# one `deb-src` entry for `sid main` there, so the machine's own apt configuration, lists
# and caches are not touched. `apt-get update` checks the sid Release file's signature
# against the machine's debian-archive-keyring (which covers sid), and `apt-get source
# --download-only` checks the downloaded files against the signed index. The .dsc's own
# signature is not checked (that would need the debian-keyring package) and Debian's
# patches are not applied: they only unbundle nanopb and cJSON.
# The build is upstream's own: the orig tarball is upstream's whole tree, built with its
# `./configure` (mklove; --no-download, no --install-deps: no network at build time),
# with the vendored nanopb and cJSON, and the system's lz4 (not the bundled copy),
# OpenSSL, zlib, zstd, Cyrus SASL (GSSAPI) and libcurl (OIDC): the Debian 12 -dev
# packages, installed with apt-get when missing (rdkafka.pc names them in
# Requires.private, so a build against it needs them too). Only the C library (src/) is
# built, and only its shared library is kept.
# About 2 minutes on 2 cores the first time.
#
# Usage: scripts/rdkafka.sh                  the newest build ≥ 2.12 in the cache, else
#                                            sid's version built now; the last line on
#                                            stdout is its prefix
#        scripts/rdkafka.sh --refresh        look at sid's current version and build it
#                                            unless that one is in the cache
#        scripts/rdkafka.sh --print-prefix   print where it is (or would be), build
#                                            nothing (may fetch sid's index to learn the
#                                            version when nothing is built yet)
#
# Cache (${DURO_CACHE:-$HOME/.cache/duro-kafka-bridge}):
#   rdkafka-<version>/   the install prefix (lib/, include/, lib/pkgconfig/rdkafka.pc:
#                        its presence means complete; <version> is upstream's, e.g. 2.14.2)
#   rdkafka-apt/         the private apt state (sources, lists, apt's caches)
#   rdkafka-src/         what `apt-get source` downloaded (.dsc, orig and debian tarballs)
# The build tree (rdkafka-build/) is removed after a successful build.
# Progress goes to stderr.
set -euo pipefail

DURO_CACHE=${DURO_CACHE:-$HOME/.cache/duro-kafka-bridge}
MIN_VERSION=2.12
SUITE=sid
apt_dir="$DURO_CACHE/rdkafka-apt"
src_dir="$DURO_CACHE/rdkafka-src"
build_dir="$DURO_CACHE/rdkafka-build"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

say() { echo "rdkafka.sh: $*" >&2; }
die() { echo "rdkafka.sh: error: $*" >&2; exit 1; }

mode=build
case "${1:-}" in
  "") ;;
  --refresh) mode=refresh ;;
  --print-prefix) mode=print ;;
  *)
    echo "usage: scripts/rdkafka.sh [--refresh|--print-prefix]" >&2
    exit 2
    ;;
esac

# version_ge A B: A >= B (dpkg's version order).
version_ge() { dpkg --compare-versions "$1" ge "$2"; }

# The newest complete build in the cache that is new enough, or nothing.
cached_prefix() {
  local pc v best="" bestv=""
  for pc in "$DURO_CACHE"/rdkafka-*/lib/pkgconfig/rdkafka.pc; do
    [ -f "$pc" ] || continue
    v=${pc#"$DURO_CACHE"/rdkafka-}
    v=${v%%/*}
    version_ge "$v" "$MIN_VERSION" || continue
    if [ -z "$bestv" ] || version_ge "$v" "$bestv"; then best=${pc%/lib/pkgconfig/rdkafka.pc}; bestv=$v; fi
  done
  [ -n "$best" ] && echo "$best"
}

# The URI of this machine's Debian archive: the entry (deb or deb-src) for its own
# release (VERSION_CODENAME in /etc/os-release, e.g. bookworm), deb822 files first.
archive_uri() {
  local codename uri="" f
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || die "no VERSION_CODENAME in /etc/os-release (not Debian?)"
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822: paragraphs of "Field: value" lines; the first URI of the first enabled
    # paragraph whose Suites has the release itself (not -security, -updates).
    uri=$(awk -v want="$codename" '
      BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; uris = ""; suites = ""; enabled = "yes"
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^#/) continue
          n = index(line, ":"); if (n == 0) continue
          key = tolower(substr(line, 1, n - 1)); val = substr(line, n + 1)
          gsub(/^[ \t]+|[ \t]+$/, "", val)
          if (key == "types") types = val
          else if (key == "uris") uris = val
          else if (key == "suites") suites = val
          else if (key == "enabled") enabled = tolower(val)
        }
        if (enabled == "no" || types !~ /(^|[ \t])deb(-src)?([ \t]|$)/) next
        ns = split(suites, s, /[ \t]+/)
        for (j = 1; j <= ns; j++) if (s[j] == want) { split(uris, u, /[ \t]+/); print u[1]; exit }
      }' "$f")
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    # One-line format: deb [options] URI suite components...
    uri=$(awk -v want="$codename" '
      $1 == "deb" || $1 == "deb-src" {
        i = 2
        if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
        if ($(i + 1) == want) { print $i; exit }
      }' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || die "no apt source for the Debian release '$codename' in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
  echo "${uri%/}"
}

apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/etc/sources.list"
  -o "Dir::Etc::SourceParts=$apt_dir/etc/sources.list.d"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "Acquire::Languages=none"
)
# As root, apt hands downloads to the _apt user, who cannot write under /root: say so
# once here instead of a warning per file.
[ "$(id -u)" -ne 0 ] || apt_opts+=(-o "APT::Sandbox::User=root")

# Writes the private apt state and updates its index (sid's Sources, about 12 MB).
apt_update() {
  [ -f "$keyring" ] || die "$keyring is missing (Debian package debian-archive-keyring)"
  local uri
  uri=$(archive_uri)
  mkdir -p "$apt_dir/etc/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  : >"$apt_dir/etc/sources.list"
  cat >"$apt_dir/etc/sources.list.d/$SUITE-src.sources" <<EOF
# Written by scripts/rdkafka.sh: Debian's $SUITE sources on this machine's own archive.
Types: deb-src
URIs: $uri
Suites: $SUITE
Components: main
Signed-By: $keyring
EOF
  say "updating the private apt index of $SUITE's sources ($apt_dir)"
  # --error-on=any: a signature that cannot be checked fails here, not later.
  apt-get "${apt_opts[@]}" -q --error-on=any update >&2 ||
    die "apt-get update of $SUITE's sources failed (see above)"
}

# sid's librdkafka version (Debian's, e.g. 2.14.2-1) from the private index.
sid_version() {
  apt-cache "${apt_opts[@]}" showsrc librdkafka 2>/dev/null |
    awk '/^Package: /{p=$2} /^Version: /{if (p=="librdkafka") print $2}' |
    sort -V | tail -n1
}

# Upstream version of a Debian version: no epoch, no revision.
upstream_of() { local v=${1#*:}; echo "${v%-*}"; }

if [ "$mode" = build ] || [ "$mode" = print ]; then
  if prefix=$(cached_prefix); then
    [ "$mode" = print ] || say "librdkafka ${prefix##*/rdkafka-} is built already ($prefix)"
    echo "$prefix"
    exit 0
  fi
fi

if [ "$mode" = print ] && [ -d "$apt_dir/lists" ] && [ -n "$(sid_version)" ]; then
  :
else
  apt_update
fi
debver=$(sid_version)
[ -n "$debver" ] || die "no librdkafka source package in $SUITE's index"
version=$(upstream_of "$debver")
prefix="$DURO_CACHE/rdkafka-$version"
if [ "$mode" = print ]; then
  echo "$prefix"
  exit 0
fi
version_ge "$version" "$MIN_VERSION" ||
  die "$SUITE has librdkafka $debver, older than $MIN_VERSION"
if [ -f "$prefix/lib/pkgconfig/rdkafka.pc" ]; then
  say "librdkafka $version is built already ($prefix)"
  echo "$prefix"
  exit 0
fi

# --- the build dependencies (Debian 12 packages)
packages=(build-essential pkg-config python3 libssl-dev zlib1g-dev libzstd-dev liblz4-dev
  libsasl2-dev libcurl4-openssl-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # The machine's own apt configuration here: these are Debian 12's packages.
  $sudo apt-get -o DPkg::Lock::Timeout=300 update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -q \
    --no-install-recommends "${missing[@]}" >&2
fi

# --- the source
dsc="$src_dir/librdkafka_${debver#*:}.dsc"
if [ ! -f "$dsc" ]; then
  say "downloading Debian's librdkafka $debver source ($SUITE)"
  mkdir -p "$src_dir"
  (cd "$src_dir" && apt-get "${apt_opts[@]}" -q source --download-only "librdkafka=$debver" >&2)
fi
orig=$(ls "$src_dir"/librdkafka_"$version".orig.tar.* 2>/dev/null | head -n1)
[ -n "$orig" ] || die "no orig tarball for $version in $src_dir"

# --- the build
start=$SECONDS
rm -rf "$build_dir"
mkdir -p "$build_dir/src"
tar -xf "$orig" -C "$build_dir/src" --strip-components=1
[ -f "$build_dir/src/src/nanopb/pb_encode.c" ] || die "the orig tarball has no vendored nanopb"
say "building librdkafka $version into $prefix"
(
  cd "$build_dir/src"
  # lz4: the system's (--enable-lz4-ext is the default); nanopb, cJSON: vendored.
  ./configure --prefix="$prefix" --no-download \
    --enable-ssl --enable-zlib --enable-zstd --enable-gssapi --enable-curl \
    --enable-lz4-ext --enable-c11threads >&2
  make -j"$(nproc)" -C src >&2
  # A staging root, moved into place whole: a half-installed prefix never looks complete.
  make -C src install DESTDIR="$build_dir/stage" >&2
)
# The programs link the shared library; the two static archives (48 MB) are not kept.
rm -f "$build_dir/stage$prefix"/lib/librdkafka*.a "$build_dir/stage$prefix"/lib/pkgconfig/rdkafka-static.pc
version_in=$(PKG_CONFIG_PATH="$build_dir/stage$prefix/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="" \
  pkg-config --modversion rdkafka)
[ "$version_in" = "$version" ] || die "built rdkafka.pc says $version_in, expected $version"
rm -rf "$prefix"
mv "$build_dir/stage$prefix" "$prefix"
rm -rf "$build_dir"
say "librdkafka $version built in $((SECONDS - start)) s ($prefix)"
echo "$prefix"
