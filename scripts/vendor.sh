#!/usr/bin/env bash
# Vendor the front-end libraries pinned in package.json (and package-lock.json)
# into scoring/static/vendor/, where the pages load them from. Run it after
# changing a pin; commit what it copies. Nothing is fetched at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --ignore-scripts
out=scoring/static/vendor/uplot
mkdir -p "$out"
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css node_modules/uplot/LICENSE "$out/"
echo "vendored uplot $(node -p "require('./node_modules/uplot/package.json').version") into $out"
