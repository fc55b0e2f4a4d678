# Sourced by tools/test and tools/demo: the developer virtualenv with the test
# dependencies (which include everything the demo drives the engine with).
VENV=.test-venv

ensure_test_venv() {
  if [[ ! -x "$VENV/bin/python3" ]]; then
    echo "-----> Creating $VENV"
    python3 -m venv "$VENV"
  fi
  echo "-----> Installing test dependencies"
  "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check -e '.[test]'
}
