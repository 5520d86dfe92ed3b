#!/usr/bin/env bash
# CI's fuzz step: builds every target once, then runs each for a few seconds from its committed seeds
# (fuzz/seeds/<target>), failing on the first crash, hang or memory blow-up.
#
# Built without a sanitizer (`--sanitizer none`): that needs no nightly toolchain (a fresh machine has
# only stable) and halves the cold build; Rust's own checks (bounds, overflow: cargo fuzz turns on
# debug assertions) still panic. The long local runs use AddressSanitizer (fuzz/README.md).
#
# Usage: bash fuzz/smoke.sh [seconds per target, default 5]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-5}

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

# Its own target dir: switching sanitizers would otherwise rebuild everything for the local runs.
build=(--sanitizer none --target-dir target/smoke)
cargo fuzz build "${build[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in $(cargo fuzz list); do
  # New inputs go to a scratch corpus, so the committed seeds stay as they are.
  mkdir -p "$work/$target"
  echo "fuzz: $target (${seconds}s)"
  dict=()
  [ -f "dicts/$target.dict" ] && dict=(-dict="dicts/$target.dict")
  cargo fuzz run "${build[@]}" "$target" "$work/$target" "seeds/$target" -- "${dict[@]}" \
    -max_total_time="$seconds" -rss_limit_mb=512 -timeout=5 -print_final_stats=1 2>"$work/log" || {
    cat "$work/log" >&2
    echo "fuzz: $target failed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  }
  grep -E '^stat::number_of_executed_units' "$work/log" || true
done
