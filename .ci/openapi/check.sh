#!/usr/bin/env bash
# Checks docs/openapi.json with the outside tools integrators and reviewers
# use, at the versions package-lock.json pins; run by .ci/run. Fails on any
# error or warning.
set -euo pipefail
cd "$(dirname "$0")"
doc=../../docs/openapi.json
bin=node_modules/.bin

# No install scripts: none of these tools needs one (the one there is
# reports usage over the network).
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

# Redocly's recommended rules (../../redocly.yaml, waivers in
# ../../.redocly.lint-ignore.yaml). It fails only on errors by itself:
# warnings are counted from its JSON report.
(cd ../.. && .ci/openapi/$bin/redocly lint docs/openapi.json --format=json) >redocly.json 2>redocly.err || true
node -e '
const fs = require("fs");
let r;
try {
  r = JSON.parse(fs.readFileSync("redocly.json", "utf8"));
} catch (e) {
  console.error("redocly lint gave no report:\n" + fs.readFileSync("redocly.err", "utf8"));
  process.exit(1);
}
for (const p of r.problems) console.error(`redocly: ${p.severity} ${p.ruleId}: ${p.message} (${p.location.map(l => l.pointer).join(", ")})`);
console.log(`redocly lint: ${r.totals.errors} errors, ${r.totals.warnings} warnings, ${r.totals.ignored} waived`);
process.exit(r.totals.errors + r.totals.warnings > 0 ? 1 : 0);
'
rm -f redocly.json redocly.err

# Spectral: its OpenAPI rules and the OWASP API Security ruleset
# (../../.spectral.yaml, with its waivers); a hint fails too.
(cd ../.. && .ci/openapi/$bin/spectral lint docs/openapi.json --ruleset .spectral.yaml --fail-severity=hint --format=stylish)

# openapi-typescript on its default options, and every documented call
# through openapi-fetch type-checked against the generated types.
$bin/openapi-typescript "$doc" --output api.d.ts --silent
$bin/tsc --project tsconfig.json
echo "openapi-typescript + openapi-fetch: every documented call type-checks"
