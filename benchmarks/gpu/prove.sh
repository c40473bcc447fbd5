#!/usr/bin/env bash
# The GPU proof in one command: our wheels installed, the CuPy tests, the conformance suite, the
# model tests, the seed's CuPy example and the GPU benchmark, within a fixed budget of seconds.
# Everything is in benchmarks/gpu/prove.py (--help); benchmarks/README.md, "The GPU proof", has
# the exact call for the device machine. --dry-run rehearses every part on a CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec "${PYTHON:-python3}" benchmarks/gpu/prove.py "$@"
