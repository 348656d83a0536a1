#!/usr/bin/env bash
# Builds a Go program of the vSphere test peer once per source version and prints the binary's
# path as the last line of stdout:
#
#   scripts/build-vcsim.sh                  the peer, test/peers/vsphere/vcsim (a Go main on
#                                           govmomi 0.24.2's simulator)
#   scripts/build-vcsim.sh govmomi-client   test/peers/vsphere/govmomi-client, which checks the
#                                           peer with govmomi's own client
#
# The binary is .cache/<program>/<program>-<sha256 of the Go sources, the Go version and the
# govmomi package version>; when it exists it is reused without running the Go tool at all. The
# Go build cache lives in .cache/go-build (shared by both programs) so that a rebuild after a
# source change is fast (~4 s instead of ~85 s cold).
#
# Needs the Debian packages golang-go and golang-github-vmware-govmomi-dev
# (scripts/install-system-deps.sh installs them). GOVMOMI_GOPATH overrides /usr/share/gocode.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
program="${1:-vcsim}"
case "$program" in
  vcsim | govmomi-client) ;;
  *)
    echo "build-vcsim: unknown program '$program' (want vcsim or govmomi-client)" >&2
    exit 2
    ;;
esac
src_dir="test/peers/vsphere/$program"
gopath="${GOVMOMI_GOPATH:-/usr/share/gocode}"
govmomi="$gopath/src/github.com/vmware/govmomi"

missing() {
  echo "build-vcsim: $1" >&2
  echo "build-vcsim: install the Debian packages 'golang-go golang-github-vmware-govmomi-dev'" >&2
  echo "build-vcsim: (run scripts/install-system-deps.sh, or: apt-get install -y golang-go golang-github-vmware-govmomi-dev)" >&2
  exit 1
}

command -v go >/dev/null 2>&1 || missing "the Go toolchain ('go') is not on PATH"
[ -d "$govmomi/simulator" ] || missing "the govmomi source is not at $govmomi"

cd "$root"
shopt -s nullglob
sources=("$src_dir"/*.go)
[ "${#sources[@]}" -gt 0 ] || { echo "build-vcsim: no Go sources in $src_dir" >&2; exit 1; }

govmomi_version="unknown"
if command -v dpkg-query >/dev/null 2>&1; then
  govmomi_version="$(dpkg-query -W -f='${Version}' golang-github-vmware-govmomi-dev 2>/dev/null || echo unknown)"
fi

hash="$(
  {
    go version
    echo "govmomi $govmomi_version $govmomi"
    for f in "${sources[@]}"; do
      printf '== %s\n' "$(basename "$f")"
      cat "$f"
    done
  } | sha256sum | cut -d' ' -f1
)"

out_dir="$root/.cache/$program"
bin="$out_dir/$program-$hash"
if [ -x "$bin" ]; then
  echo "build-vcsim: up to date ($bin)" >&2
  echo "$bin"
  exit 0
fi

mkdir -p "$out_dir" "$root/.cache/go-build"
tmp="$(mktemp "$out_dir/.$program-build.XXXXXX")"
trap 'rm -f "$tmp"' EXIT

echo "build-vcsim: building $src_dir (a cold Go cache takes about 1.5 minutes)" >&2
start=$(date +%s)
GOPATH="$gopath" GO111MODULE=off GOFLAGS="" GOCACHE="$root/.cache/go-build" \
  go build -o "$tmp" "./$src_dir"
chmod +x "$tmp"
# A rename is atomic, so a concurrent build or a reader never sees half a binary.
mv -f "$tmp" "$bin"
trap - EXIT
echo "build-vcsim: built in $(($(date +%s) - start)) s" >&2

# Binaries of older sources are of no further use.
for old in "$out_dir/$program"-*; do
  [ "$old" = "$bin" ] || rm -f "$old"
done

echo "$bin"
