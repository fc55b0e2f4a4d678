# Sourced by tools/test: the developer virtualenv with the test dependencies, exactly as the
# test lock of its Python pins them: the plugin's own lock plus the test tools.
VENV=.test-venv

ensure_test_venv() {
  local lock
  if [[ ! -x "$VENV/bin/python3" ]]; then
    echo "-----> Creating $VENV"
    python3 -m venv "$VENV"
  fi
  lock=$("$VENV/bin/python3" -m network_plugin.package_locks test)
  echo "-----> Installing test dependencies ($lock)"
  "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
    --requirement "$lock"
}
