# Shared by scripts/run and scripts/test. Sourced, not run.
step() { printf '\n==> %s\n' "$*"; }

# ensure_venv EXTRAS: a virtualenv in .venv with splitlab installed editable with those extras.
ensure_venv() {
  if [ ! -x .venv/bin/python ]; then
    step "creating .venv"
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
  fi
  step "installing splitlab[$1]"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$1]"
}

# ensure_system_packages: what the test suite needs from Debian (a real browser, Java for Spark,
# promtool to check the shipped alert rules).
ensure_system_packages() {
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v java >/dev/null || missing+=(default-jre-headless)
  command -v wrk >/dev/null || missing+=(wrk)
  command -v promtool >/dev/null || missing+=(prometheus)
  if [ ${#missing[@]} -gt 0 ]; then
    step "apt-get install ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "missing system packages (${missing[*]}); run as root or install them" >&2
    fi
  fi
}
