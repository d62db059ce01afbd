#!/usr/bin/env bash
# Install what memtrace needs to build and test, on Debian 12 (bookworm).
# Idempotent: a second run installs nothing and exits 0 quickly.
# libbpf >= 1.4, bpftool >= 7.5 and elfutils >= 0.192 come from
# bookworm-backports; everything else from the main archive.
set -euo pipefail

die() { echo "setup: Error: $*" >&2; exit 1; }
say() { echo "setup: $*"; }

PKGS=(make gcc g++ clang llvm pkg-config libbpf-dev bpftool libelf-dev libdw-dev
      zlib1g-dev libzstd-dev libcriterion-dev libiberty-dev libcapstone-dev python3 python3-pytest util-linux
      sqlite3 bpftrace heaptrack valgrind libjemalloc-dev libgoogle-perftools-dev musl-tools
      libclang-rt-dev libmimalloc-dev libunwind8)
BACKPORTS=(libbpf-dev libbpf1 bpftool libelf-dev libdw-dev libelf1 libdw1 libdebuginfod1)

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages); try: sudo $0"
[ -r /etc/os-release ] || die "cannot read /etc/os-release: unsupported system"
. /etc/os-release
if [ "${ID:-}" != debian ] || [ "${VERSION_CODENAME:-}" != bookworm ]; then
	die "unsupported system '${PRETTY_NAME:-unknown}': this script supports Debian 12 (bookworm); install libbpf >= 1.4, bpftool >= 7.5, elfutils >= 0.192, clang, criterion by hand"
fi

# version_ge A B: true when Debian version A >= B
version_ge() { dpkg --compare-versions "$1" ge "$2"; }
installed_version() { { dpkg-query -W -f="\${Status} \${Version}\n" "$1" 2>/dev/null || true; } | awk "/install ok installed/ {print \$4}"; }

need_install=0
for p in "${PKGS[@]}"; do
	[ -n "$(installed_version "$p")" ] || { need_install=1; break; }
done
v=$(installed_version libbpf-dev); [ -n "$v" ] && version_ge "$v" 1:1.4 || need_install=1
v=$(installed_version libdw-dev); [ -n "$v" ] && version_ge "$v" 0.192 || need_install=1
v=$(installed_version bpftool); [ -n "$v" ] && version_ge "$v" 7.5 || need_install=1
if [ $need_install = 0 ]; then
	say "all dependencies present"
	exit 0
fi

BP=/etc/apt/sources.list.d/bookworm-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	say "enabling bookworm-backports in $BP"
	cat > "$BP" <<EOT
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
fi

export DEBIAN_FRONTEND=noninteractive
say "apt-get update"
apt-get update -qq || die "apt-get update failed"
say "installing: ${PKGS[*]} (libbpf, bpftool, elfutils from bookworm-backports)"
apt-get install -y -qq --no-install-recommends -t bookworm-backports "${BACKPORTS[@]}" >/dev/null \
	|| die "installing from bookworm-backports failed"
apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null \
	|| die "apt-get install failed"

v=$(installed_version libbpf-dev); version_ge "$v" 1:1.4 || die "libbpf-dev $v < 1.4"
v=$(installed_version libdw-dev); version_ge "$v" 0.192 || die "libdw-dev $v < 0.192"
v=$(installed_version bpftool); version_ge "$v" 7.5 || die "bpftool $v < 7.5"
say "done: libbpf $(installed_version libbpf-dev), bpftool $(installed_version bpftool), elfutils $(installed_version libdw-dev)"
