#!/usr/bin/env bash
# Regenerate vmlinux/vmlinux.h from the running kernel's BTF.
# The checked-in header is enough to build: CO-RE relocates field
# accesses at load time, so it need not match the target kernel.
set -euo pipefail
BTF=${1:-/sys/kernel/btf/vmlinux}
OUT=${2:-$(dirname "$0")/../vmlinux/vmlinux.h}
[ -r "$BTF" ] || { echo "gen-vmlinux: Error: $BTF not readable (kernel without BTF?)" >&2; exit 1; }
bpftool btf dump file "$BTF" format c > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "gen-vmlinux: wrote $OUT from $BTF"
