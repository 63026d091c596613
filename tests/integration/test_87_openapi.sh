# docs/openapi.yaml: a linter finds no error (Redocly CLI, pinned, installed
# from the npm registry here: a failed install is a failure, not a skip), and
# it describes exactly the routes of fcgi-app/routes.c. (run.sh validates every
# response of the suite against it at the end: check_contract.py.)

REDOCLY_VERSION=2.77.0
NPM_DIR=${FETCHML_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fetchml-npm}
REDOCLY=$NPM_DIR/node_modules/.bin/redocly
redocly_installed() {
    [ -x "$REDOCLY" ] && [ "$(jq -r .version "$NPM_DIR/node_modules/@redocly/cli/package.json" 2>/dev/null)" = "$REDOCLY_VERSION" ] ||
        timeout 300 npm install --silent --no-audit --no-fund --prefix "$NPM_DIR" \
            "@redocly/cli@$REDOCLY_VERSION" >"$OUT/npm.log" 2>&1
}
check "Redocly CLI $REDOCLY_VERSION is installed (npm, pinned)" redocly_installed
lint() {
    REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true timeout 120 "$REDOCLY" lint \
        --format=stylish "$ROOT/docs/openapi.yaml" >"$OUT/lint.out" 2>&1
    local rc=$?
    grep -E 'error|warning' "$OUT/lint.out" | grep -v 'Deprecation' | head -20
    [ $rc -eq 0 ] && ! grep -Eq '^\s*[0-9]+:[0-9]+\s+(error|warning)' "$OUT/lint.out"
}
check "redocly lint docs/openapi.yaml: no error or warning" lint
check "every route of fcgi-app/routes.c is described, and nothing else" \
    python3 "$ROOT/tests/integration/check_routes_described.py" "$ROOT/fcgi-app/routes.c" "$ROOT/docs/openapi.yaml"
check "docs/openapi.yaml is OpenAPI 3.1" bash -c "python3 -c 'import sys, yaml; sys.exit(yaml.safe_load(open(sys.argv[1]))[\"openapi\"] != \"3.1.0\")' '$ROOT/docs/openapi.yaml'"

# The checks can fail: a spec that drifted from a real answer, and a route without a description.
as researcher GET /v1/whoami
one=$OUT/contract-one
mkdir -p "$one" && cp "$H" "$one/1.h" && cp "$B" "$one/1.b" && echo "GET /v1/whoami $STATUS" >"$one/1.r"
check "check_contract.py passes a real whoami answer" \
    python3 "$ROOT/tests/integration/check_contract.py" "$ROOT/docs/openapi.yaml" "$one"
sed 's/required: \[user, admin, roles, permissions, rate_limit\]/&\n      dependentRequired: {user: [no_such_field]}/' \
    "$ROOT/docs/openapi.yaml" >"$OUT/drifted.yaml"
check "... and fails it against a spec that wants a field whoami does not send" \
    bash -c 'python3 "$1" "$2" "$3" | grep -q "no_such_field"' _ "$ROOT/tests/integration/check_contract.py" "$OUT/drifted.yaml" "$one"
sed 's#^  /metrics:#  /metricz:#' "$ROOT/docs/openapi.yaml" >"$OUT/undescribed.yaml"
check "check_routes_described.py fails when a route has no description" \
    bash -c 'python3 "$1" "$2" "$3" | grep -q "route GET /metrics .* has no description"' _ "$ROOT/tests/integration/check_routes_described.py" \
    "$ROOT/fcgi-app/routes.c" "$OUT/undescribed.yaml"
