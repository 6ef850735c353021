# Sourced first by the scripts in benches/.

say() { printf '%s\n' "$*" >&2; }

# install_with_apt PACKAGE...: installs the Debian packages given, if any (as root).
install_with_apt() {
    [ $# -gt 0 ] || return 0
    say "installing with apt: $*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
