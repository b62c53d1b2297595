#!/bin/sh
# Install (or remove) pilive as a systemd service on Raspberry Pi OS Bookworm or Trixie.
#
#   sudo systemd/install.sh --key-stdin < key.txt    # install, enable and start
#   sudo systemd/install.sh --uninstall [--purge]     # remove unit, venv and user
#   ... | sudo systemd/install.sh --token-url URL --device-credential-stdin  # a fleet device
#   sudo systemd/install.sh --token-service --key-stdin < key.txt  # the fleet's token service
#
# Run it from a checkout: the package is built from the checkout this script lives in. What it sets
# up (see pilive.service for why each piece is there):
#   apt packages      python3-venv, a C compiler and python3-dev (for the audio ring buffer),
#                     libspeexdsp-dev (for the "speex" echo canceller), the hardware bindings python3-pyaudio, python3-systemd, python3-lgpio and
#                     python3-picamera2 (the last two only exist in Raspberry Pi OS's archive), and
#                     python3-numpy, python3-pil (Pillow: the camera crops, scales and encodes
#                     with it) and python3-simplejpeg (Raspberry Pi OS), which pip then takes as
#                     installed: PyPI has no 32-bit (armhf) wheel of simplejpeg or Pillow, and
#                     numpy would build from source there.
#   PREFIX/venv       a venv with --system-site-packages, so it sees those apt bindings; pilive is
#                     pip-installed into it (not editable: the checkout may be deleted afterwards)
#   the unit          /etc/systemd/system/pilive.service (ExecStart follows --prefix)
#   the user          /usr/lib/sysusers.d/pilive.conf, applied with systemd-sysusers
#   directories       /usr/lib/tmpfiles.d/pilive.conf, applied with systemd-tmpfiles
#   the config        /etc/pilive/pilive.toml, copied only when absent (never overwritten)
#   the key           /etc/pilive/gemini-api-key, root:root 0600. The service never reads it as
#                     its own user: systemd hands it over with LoadCredential=. It comes from stdin
#                     or from a file, never from the command line (argv is visible to all users).
#   a fleet device    --device-credential-stdin writes the device's credential for the token service
#                     to /etc/pilive/pilive-device-token (root:root 0600, LoadCredential= like the
#                     key) and empties the key file: a fleet device holds no API key. --token-url
#                     (and --token-ca-file) go into a new /etc/pilive/pilive.toml.
#   --token-service   the token service for the owner's server instead of the device daemon: its
#                     unit, user and directories (pilive-token-service.*), the venv with aiohttp,
#                     /etc/pilive/token-service.toml (when absent), the API key as
#                     /etc/pilive/token-service-api-key and the TLS key (--tls-key) as
#                     /etc/pilive/token-service-key.pem, both root:root 0600.
# Running it again updates the package and the files it owns and keeps config, key and state.
# A service is started (or restarted, to run the new code) only when its key or credential file
# is not empty.
set -eu

PROG=pilive-install
UNIT=pilive.service
TOKEN_UNIT=pilive-token-service.service
DEFAULT_PREFIX=/opt/pilive
# Debian packages the install cannot do without; --print-packages lists them for image builders.
REQUIRED_PACKAGES="python3 python3-venv python3-dev gcc libc6-dev libspeexdsp-dev python3-pyaudio
python3-systemd python3-numpy python3-pil"
# Raspberry Pi OS only: the camera (libcamera), the GPIO library gpiozero uses on a Pi, and the
# JPEG encoder picamera2 uses.
PI_PACKAGES="python3-lgpio python3-picamera2 python3-simplejpeg"
# The token service: no audio or camera, aiohttp from Debian (pip takes it as installed, as it
# does the package's own dependencies numpy and Pillow, which it would otherwise fetch or build).
TOKEN_SERVICE_PACKAGES="python3 python3-venv python3-dev gcc libc6-dev python3-systemd
python3-numpy python3-pil python3-aiohttp"

usage() {
    cat <<EOF
usage: install.sh [options]
       install.sh --uninstall [--purge] [--prefix DIR] [--root DIR]

Install pilive as a systemd service: apt packages, a venv at PREFIX/venv, the unit, its user and
directories, /etc/pilive/pilive.toml (when absent) and the API key file; then enable and start it.

  --key-stdin       read the Gemini API key from standard input (one line; not shown as it is
                    typed or pasted into a terminal)
  --key-file FILE   read the Gemini API key from FILE
                    (without either, an existing key is kept, or an empty key file is created)
  --device-credential-stdin
                    a fleet device: read its credential for the token service (what
                    "pilive token-service add-device NAME" printed) from standard input; the
                    device then holds no API key
  --token-url URL   the token service (https://host:port/v1/token), written into a new
                    /etc/pilive/pilive.toml with api_version = "v1alpha"
  --token-ca-file FILE
                    the CA certificate that signed the token service's certificate
  --token-service   install the token service (on the owner's server) instead of the device
                    daemon; --key-stdin/--key-file give it the API key; with --uninstall, remove it
  --tls-cert FILE   with --token-service: its certificate chain (PEM); it then listens on all
                    addresses, port 8443
  --tls-key FILE    with --token-service: the certificate's private key (kept root-only)
  --prefix DIR      install the venv under DIR (default: $DEFAULT_PREFIX)
  --root DIR        install the files into the tree at DIR (an image being built) and apply users
                    and directories there; builds no venv and starts nothing
  --no-apt          do not install Debian packages (they are already there)
  --no-start        enable the service but do not start it
  --uninstall       stop and disable the service, remove the unit, the venv and the user;
                    keep /etc/pilive (config and key) and /var/lib/pilive (conversation state)
  --purge           with --uninstall: remove /etc/pilive and /var/lib/pilive too (with
                    --token-service: its files in /etc/pilive and /var/lib/pilive-token-service)
  --print-packages  print the Debian packages this system would get, one per line, and exit
  -h, --help        show this help
EOF
}

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}
usage_error() {
    printf '%s: error: %s (see --help)\n' "$PROG" "$*" >&2
    exit 2
}

# --- options -------------------------------------------------------------------------------------

action=install
purge=no
prefix=$DEFAULT_PREFIX
root=
use_apt=yes
start=yes
key_source=
key_file=
credential_stdin=no
token_url=
token_ca_file=
token_service=no
tls_cert=
tls_key=
while [ $# -gt 0 ]; do
    case $1 in
        --key-stdin) key_source=stdin ;;
        --device-credential-stdin) credential_stdin=yes ;;
        --token-url)
            [ $# -ge 2 ] || usage_error "--token-url needs a URL"
            token_url=$2
            shift
            ;;
        --token-url=*) token_url=${1#--token-url=} ;;
        --token-ca-file)
            [ $# -ge 2 ] || usage_error "--token-ca-file needs a file name"
            token_ca_file=$2
            shift
            ;;
        --token-ca-file=*) token_ca_file=${1#--token-ca-file=} ;;
        --token-service) token_service=yes ;;
        --tls-cert)
            [ $# -ge 2 ] || usage_error "--tls-cert needs a file name"
            tls_cert=$2
            shift
            ;;
        --tls-cert=*) tls_cert=${1#--tls-cert=} ;;
        --tls-key)
            [ $# -ge 2 ] || usage_error "--tls-key needs a file name"
            tls_key=$2
            shift
            ;;
        --tls-key=*) tls_key=${1#--tls-key=} ;;
        --key-file)
            [ $# -ge 2 ] || usage_error "--key-file needs a file name"
            key_source=path
            key_file=$2
            shift
            ;;
        --key-file=*) key_source=path key_file=${1#--key-file=} ;;
        --prefix)
            [ $# -ge 2 ] || usage_error "--prefix needs a directory"
            prefix=$2
            shift
            ;;
        --prefix=*) prefix=${1#--prefix=} ;;
        --root)
            [ $# -ge 2 ] || usage_error "--root needs a directory"
            root=$2
            shift
            ;;
        --root=*) root=${1#--root=} ;;
        --no-apt) use_apt=no ;;
        --no-start) start=no ;;
        --uninstall) action=uninstall ;;
        --purge) purge=yes ;;
        --print-packages) action=print-packages ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) usage_error "unknown option '${1%%=*}'" ;;
    esac
    shift
done

case $prefix in
    /*) ;;
    *) usage_error "--prefix must be an absolute path, not '$prefix'" ;;
esac
prefix=$(printf '%s' "$prefix" | sed 's:/*$::')
[ -n "$prefix" ] || usage_error "--prefix must not be /"
case $prefix in
    *[!A-Za-z0-9/._+-]*) usage_error "--prefix may only use letters, digits and / . _ + -" ;;
esac
if [ -n "$root" ]; then
    case $root in
        /*) ;;
        *) usage_error "--root must be an absolute path, not '$root'" ;;
    esac
    root=$(printf '%s' "$root" | sed 's:/*$::')
    [ -n "$root" ] || root=
    if [ -n "$root" ] && [ ! -d "$root" ]; then
        usage_error "--root $root is not a directory"
    fi
fi
if [ "$purge" = yes ] && [ "$action" != uninstall ]; then
    usage_error "--purge only goes with --uninstall"
fi
if [ "$action" = uninstall ] && [ -n "$key_source" ]; then
    usage_error "--uninstall takes no key"
fi
if [ "$credential_stdin" = yes ]; then
    [ -z "$key_source" ] || usage_error "a fleet device holds no API key: give" \
        "--device-credential-stdin or a key, not both"
    [ "$action" = install ] || usage_error "--device-credential-stdin only goes with an install"
    key_source=stdin
fi
if [ "$token_service" = yes ]; then
    if [ "$credential_stdin" = yes ] || [ -n "$token_url" ] || [ -n "$token_ca_file" ]; then
        usage_error "--token-service takes no device options (--device-credential-stdin," \
            "--token-url, --token-ca-file)"
    fi
    UNIT=$TOKEN_UNIT
elif [ -n "$tls_cert" ] || [ -n "$tls_key" ]; then
    usage_error "--tls-cert and --tls-key only go with --token-service"
fi
key_what="API key"
if [ "$credential_stdin" = yes ]; then key_what="device credential"; fi
if { [ -n "$tls_cert" ] && [ -z "$tls_key" ]; } || { [ -z "$tls_cert" ] && [ -n "$tls_key" ]; }; then
    usage_error "--tls-cert and --tls-key go together"
fi
case $token_url in
    '') ;;
    *[!A-Za-z0-9.:/_%~@[\]-]*) usage_error "--token-url may only use URL characters" ;;
    https://?* | http://127.0.0.1[:/]* | http://localhost[:/]* | "http://[::1]"[:/]*) ;;
    *) usage_error "--token-url must start with https:// (http:// only to loopback)" ;;
esac
for given in "$token_ca_file" "$tls_cert" "$tls_key"; do
    if [ -n "$given" ] && { [ ! -f "$given" ] || [ ! -r "$given" ]; }; then
        usage_error "$given is not a readable file"
    fi
done

here=$(cd "$(dirname "$0")" && pwd)
checkout=$(dirname "$here")
venv=$prefix/venv

# --- building blocks -----------------------------------------------------------------------------

# True when a Debian package can be installed from the configured archives.
apt_has() {
    candidate=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
    [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

# systemd is the running init here (not a chroot or an image being built).
systemd_running() {
    [ -z "$root" ] && [ -d /run/systemd/system ]
}

systemctl_here() {
    if [ -n "$root" ]; then
        systemctl --root="$root" "$@"
    else
        systemctl "$@"
    fi
}

# A new empty file beside DEST, for filling and then renaming over DEST. mktemp gives it a fresh,
# unpredictable name and creates it exclusively with mode 0600, so nothing prepared in advance (a
# symlink, a world-readable file) is ever written through, and no one else can read it meanwhile.
new_file_beside() { # DEST
    mktemp "$(dirname "$1")/.$(basename "$1").XXXXXXXX"
}

# Install a file owned by root with a mode; say so only when it changed.
put_file() { # SOURCE DEST MODE
    if [ -f "$2" ] && [ ! -L "$2" ] && cmp -s "$1" "$2"; then
        chown root:root "$2"
        chmod "$3" "$2"
        return 0
    fi
    mkdir -p "$(dirname "$2")"
    tmp_file=$(new_file_beside "$2")
    cat "$1" >"$tmp_file"
    chown root:root "$tmp_file"
    chmod "$3" "$tmp_file"
    mv -fT "$tmp_file" "$2"
    say "installed ${2#"$root"}"
}

# Terminal echo off while the key is typed or pasted, back on however the read ends.
echo_off() {
    tty_state=$(stty -g) || return 0
    trap 'echo_on; exit 130' INT TERM HUP
    trap 'echo_on' EXIT
    stty -echo
}
echo_on() {
    if [ -n "${tty_state:-}" ]; then
        stty "$tty_state"
        tty_state=
        printf '\n' >&2 # the Enter that was not echoed
    fi
}

# The key, read without it ever being a process argument; echoed nowhere (not even as it is
# pasted into a terminal).
read_key() {
    case $key_source in
        stdin)
            if [ -t 0 ]; then
                echo_off
                say "paste the $key_what and press Enter (it is not shown)"
            fi
            if ! { IFS= read -r key || [ -n "${key:-}" ]; }; then
                echo_on
                die "no $key_what on standard input: nothing was changed"
            fi
            echo_on
            trap - EXIT INT TERM HUP
            ;;
        path)
            if [ ! -f "$key_file" ] || [ ! -r "$key_file" ]; then
                die "--key-file $key_file is not a readable file: nothing was changed"
            fi
            IFS= read -r key <"$key_file" || [ -n "${key:-}" ] ||
                die "--key-file $key_file is empty: nothing was changed"
            ;;
    esac
    # Surrounding blanks (a pasted newline or a CR) are not part of a key.
    key=$(printf '%s' "$key" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
    [ -n "$key" ] || die "the $key_what given is empty: nothing was changed"
    # Printable ASCII without spaces, as an HTTP header value needs (pilive checks the same).
    if [ -n "$(printf '%s' "$key" | LC_ALL=C tr -d '!-~')" ]; then
        die "the $key_what given contains spaces, control or non-ASCII characters:" \
            "nothing was changed"
    fi
}

# --- install -------------------------------------------------------------------------------------

install_apt_packages() {
    want=$REQUIRED_PACKAGES
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    if [ "$token_service" = yes ]; then
        want=$TOKEN_SERVICE_PACKAGES
        # shellcheck disable=SC2086 # one word per package in the message
        say apt-get install $want
        # shellcheck disable=SC2086 # word splitting of the package list is intended
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $want >&2
        return 0
    fi
    for pkg in $PI_PACKAGES; do
        if apt_has "$pkg"; then
            want="$want $pkg"
        elif [ "$pkg" != python3-simplejpeg ]; then # pip (or Pillow) stands in for it
            say "note: $pkg is not in this system's archives (it comes with Raspberry Pi OS);" \
                "camera source \"picamera2\" or pin factory \"lgpio\" will not work without it"
        fi
    done
    say "apt-get install $want"
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $want >&2
}

print_packages() {
    if [ "$token_service" = yes ]; then
        for pkg in $TOKEN_SERVICE_PACKAGES; do echo "$pkg"; done
        return 0
    fi
    for pkg in $REQUIRED_PACKAGES; do echo "$pkg"; done
    for pkg in $PI_PACKAGES; do
        if apt_has "$pkg"; then echo "$pkg"; fi
    done
}

apply_sysusers_and_tmpfiles() { # NAME (pilive or pilive-token-service)
    put_file "$here/$1.sysusers" "$root/usr/lib/sysusers.d/$1.conf" 0644
    put_file "$here/$1.tmpfiles" "$root/usr/lib/tmpfiles.d/$1.conf" 0644
    if [ -n "$root" ]; then
        mkdir -p "$root/etc"
        systemd-sysusers --root="$root" "$1.conf"
        systemd-tmpfiles --create --root="$root" "$1.conf"
    else
        systemd-sysusers "$1.conf"
        systemd-tmpfiles --create "$1.conf"
    fi
}

# The shipped config as it is, or with the lines SED_SCRIPT changes; only when absent.
install_config_file() { # SHIPPED NAME SED_SCRIPT
    dest=$root/etc/pilive/$2
    if [ -e "$dest" ]; then
        say "kept /etc/pilive/$2 (it is never overwritten; compare with $1)"
        return 1
    fi
    tmp_config=$(mktemp)
    sed "$3" "$1" >"$tmp_config"
    put_file "$tmp_config" "$dest" 0644
    rm -f "$tmp_config"
}

install_config() {
    edits=
    if [ -n "$token_url" ]; then
        edits="s|^api_version = .*|api_version = \"v1alpha\"|; s|^# token_url = .*|token_url = \"$token_url\"|"
        if [ -n "$token_ca_file" ]; then
            edits="$edits; s|^# token_ca_file = .*|token_ca_file = \"/etc/pilive/token-service-ca.pem\"|"
        fi
    fi
    if ! install_config_file "$checkout/config/pilive.toml" pilive.toml "$edits" &&
        [ -n "$token_url" ] &&
        ! grep -qx "token_url = \"$token_url\"" "$root/etc/pilive/pilive.toml"; then
        say "note: set token_url = \"$token_url\" and api_version = \"v1alpha\" under [live] in" \
            "/etc/pilive/pilive.toml yourself"
    fi
    if [ -n "$token_ca_file" ]; then
        put_file "$token_ca_file" "$root/etc/pilive/token-service-ca.pem" 0644
    fi
}

# A root-only secret file: with WRITE=yes the secret read from stdin or a file, with WRITE=empty
# nothing, else what is there is kept, or an empty one is made (LoadCredential= fails a unit whose
# file is missing). HINT, if any, tells where an empty one needs filling.
install_secret() { # DEST WRITE WHAT HINT
    dest=$root$1
    if [ "$2" != no ] || { [ ! -e "$dest" ] && [ ! -L "$dest" ]; }; then
        # Written into a new root-only file, then renamed into place (over a symlink, not through
        # it): never readable by anyone else, not even briefly.
        tmp_key=$(new_file_beside "$dest")
        trap 'rm -f "$tmp_key"' EXIT
        if [ "$2" = yes ]; then printf '%s\n' "$key" >"$tmp_key"; fi
        chown root:root "$tmp_key"
        chmod 0600 "$tmp_key"
        mv -fT "$tmp_key" "$dest"
        trap - EXIT
        if [ "$2" = yes ]; then
            say "wrote the $3 to $1 (root only)"
        elif [ "$2" = empty ]; then
            say "emptied $1: $4"
        elif [ -n "$4" ]; then
            say "created an empty $1: $4"
        fi
    elif [ -L "$dest" ]; then
        say "kept $1, a symlink: its target's owner and mode are yours"
        return 0
    fi
    chown root:root "$dest"
    chmod 0600 "$dest"
}

install_key() {
    if [ "$credential_stdin" = yes ]; then
        if [ -s "$root/etc/pilive/gemini-api-key" ] || [ -L "$root/etc/pilive/gemini-api-key" ]; then
            install_secret /etc/pilive/gemini-api-key empty "API key" \
                "a fleet device holds no API key"
        fi
        install_secret /etc/pilive/pilive-device-token yes "device credential" ""
        install_secret /etc/pilive/gemini-api-key no "API key" ""
    else
        written=no
        if [ -n "$key_source" ]; then written=yes; fi
        install_secret /etc/pilive/gemini-api-key "$written" "API key" \
            "put your key there (see --key-stdin)"
        install_secret /etc/pilive/pilive-device-token no "device credential" ""
    fi
}

install_venv() { # EXTRAS (e.g. "[token-service]", or "")
    command -v python3 >/dev/null ||
        die "python3 is missing (drop --no-apt, or apt-get install python3-venv)"
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "" 2>/dev/null &&
        grep -qx 'include-system-site-packages = true' "$venv/pyvenv.cfg"; then
        say "reusing the venv at $venv"
    else
        if [ -e "$venv" ]; then
            [ -f "$venv/pyvenv.cfg" ] || die "$venv exists and is not a venv: move it away first"
            say "replacing the broken or outdated venv at $venv"
            rm -rf "$venv"
        fi
        say "creating a venv at $venv (with system site packages)"
        mkdir -p "$prefix"
        python3 -m venv --system-site-packages "$venv"
    fi
    # Build from a copy: the checkout stays untouched (no root-owned build/ or egg-info in it) and
    # may be read-only.
    src=$(mktemp -d "${TMPDIR:-/tmp}/pilive-src.XXXXXX")
    trap 'rm -rf "$src"' EXIT
    (cd "$checkout" && tar -cf - --exclude=__pycache__ --exclude='*.so' --exclude='*.egg-info' \
        pyproject.toml README.md daemon) | (cd "$src" && tar -xf -)
    for extra in LICENSE LICENSE.txt COPYING; do
        if [ -f "$checkout/$extra" ]; then cp "$checkout/$extra" "$src/"; fi
    done
    say "pip install pilive from $checkout (builds the audio ring buffer)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-warn-script-location "$src$1" >&2
    rm -rf "$src"
    trap - EXIT
    version=$("$venv/bin/pilive" --version) || die "$venv/bin/pilive does not run"
    say "installed $version"
}

install_unit() {
    tmp_unit=$(mktemp)
    sed "s:^ExecStart=$DEFAULT_PREFIX/venv/bin/pilive :ExecStart=$venv/bin/pilive :" \
        "$here/$UNIT" >"$tmp_unit"
    put_file "$tmp_unit" "$root/etc/systemd/system/$UNIT" 0644
    rm -f "$tmp_unit"
}

enable_and_start() {
    if ! systemd_running; then
        # An image or a chroot: enable offline; systemd starts it on the next boot.
        systemctl_here enable "$UNIT" >&2
        say "enabled $UNIT (not started: systemd is not running here)"
        return 0
    fi
    systemctl daemon-reload
    systemctl enable "$UNIT" >&2
    if [ "$start" = no ]; then
        say "enabled $UNIT; start it with: systemctl start $UNIT"
    elif [ "$token_service" = yes ] && [ ! -s /etc/pilive/token-service-api-key ]; then
        say "enabled $UNIT but did not start it: /etc/pilive/token-service-api-key is empty." \
            "Add the key (sudo $0 --token-service --key-stdin) and it starts."
    elif [ "$token_service" = no ] && [ ! -s /etc/pilive/gemini-api-key ] &&
        [ ! -s /etc/pilive/pilive-device-token ]; then
        say "enabled $UNIT but did not start it: /etc/pilive/gemini-api-key is empty. Add the key" \
            "(sudo $0 --key-stdin, then paste it and press Enter), or a fleet device's" \
            "credential (--device-credential-stdin), and it starts."
    else
        # restart: a running service picks up the package just installed. It returns once the
        # daemon has sent READY=1 (Type=notify), or failed.
        if ! systemctl restart "$UNIT"; then
            if [ "$token_service" = yes ]; then
                die "$UNIT did not start. See: journalctl -u $UNIT -n 50"
            fi
            die "$UNIT did not start. See: journalctl -u $UNIT -n 50; check the config with:" \
                "$venv/bin/pilive check --config /etc/pilive/pilive.toml"
        fi
        say "started $UNIT; follow it with: journalctl -u $UNIT -f"
    fi
}

do_install() {
    if [ -n "$key_source" ]; then read_key; fi
    if [ "$use_apt" = yes ] && [ -z "$root" ]; then
        install_apt_packages
    fi
    if [ "$token_service" = yes ]; then
        install_token_service_files
    else
        apply_sysusers_and_tmpfiles pilive
        install_config
        install_key
    fi
    if [ -z "$root" ]; then
        if [ "$token_service" = yes ]; then install_venv "[token-service]"; else install_venv ""; fi
    else
        say "not building a venv under --root: run this script inside the image to build it"
    fi
    install_unit
    enable_and_start
}

install_token_service_files() {
    apply_sysusers_and_tmpfiles pilive-token-service
    edits=
    if [ -n "$tls_cert" ]; then
        edits='s|^listen = .*|listen = "0.0.0.0:8443"|; s|^# tls_cert_file = |tls_cert_file = |'
    fi
    install_config_file "$checkout/config/token-service.toml" token-service.toml "$edits" || true
    written=no
    if [ -n "$key_source" ]; then written=yes; fi
    install_secret /etc/pilive/token-service-api-key "$written" "API key" \
        "put the API key there (see --key-stdin)"
    if [ -n "$tls_cert" ]; then
        put_file "$tls_cert" "$root/etc/pilive/token-service-cert.pem" 0644
        put_file "$tls_key" "$root/etc/pilive/token-service-key.pem" 0600
    else
        install_secret /etc/pilive/token-service-key.pem no "TLS private key" ""
    fi
}

# --- uninstall -----------------------------------------------------------------------------------

has_user() { # NAME
    grep -q "^$1:" "$root/etc/passwd" 2>/dev/null
}

do_uninstall() {
    if systemd_running; then
        systemctl disable --now "$UNIT" >&2 2>/dev/null || true
    elif [ -e "$root/etc/systemd/system/$UNIT" ]; then
        systemctl_here disable "$UNIT" >&2 || true
    fi
    if [ -e "$root/etc/systemd/system/$UNIT" ]; then
        rm -f "$root/etc/systemd/system/$UNIT"
        say "removed /etc/systemd/system/$UNIT"
    fi
    if systemd_running; then
        systemctl daemon-reload
        systemctl reset-failed "$UNIT" 2>/dev/null || true
    fi
    target=$root$venv
    other=$TOKEN_UNIT
    if [ "$token_service" = yes ]; then other=pilive.service; fi
    if [ -e "$target" ] && [ -e "$root/etc/systemd/system/$other" ]; then
        say "kept the venv at $venv: $other still uses it"
    elif [ -e "$target" ]; then
        # Only ever delete something that is a venv.
        [ -f "$target/pyvenv.cfg" ] || die "$target is not a venv: not removing it"
        rm -rf "$target"
        rmdir "$root$prefix" 2>/dev/null || true
        say "removed the venv at $venv"
    fi
    user=pilive
    if [ "$token_service" = yes ]; then user=pilive-tokens; fi
    if has_user "$user"; then
        if [ -n "$root" ]; then userdel --root "$root" "$user"; else userdel "$user"; fi
        say "removed the user $user"
    fi
    if grep -q "^$user:" "$root/etc/group" 2>/dev/null; then
        if [ -n "$root" ]; then groupdel --root "$root" "$user"; else groupdel "$user"; fi
    fi
    if [ "$token_service" = yes ]; then
        rm -f "$root/usr/lib/sysusers.d/pilive-token-service.conf" \
            "$root/usr/lib/tmpfiles.d/pilive-token-service.conf"
        if [ "$purge" = yes ]; then
            rm -rf "$root/etc/pilive/token-service.toml" "$root/etc/pilive/token-service-api-key" \
                "$root/etc/pilive/token-service-key.pem" "$root/etc/pilive/token-service-cert.pem" \
                "$root/var/lib/pilive-token-service"
            rmdir "$root/etc/pilive" 2>/dev/null || true
            say "purged the token service's files in /etc/pilive and /var/lib/pilive-token-service"
        else
            say "kept /etc/pilive/token-service* (config and keys) and" \
                "/var/lib/pilive-token-service (devices, audit): --purge removes them"
        fi
        return 0
    fi
    rm -f "$root/usr/lib/sysusers.d/pilive.conf" "$root/usr/lib/tmpfiles.d/pilive.conf"
    if [ "$purge" = yes ]; then
        rm -rf "$root/etc/pilive" "$root/var/lib/pilive"
        say "purged /etc/pilive and /var/lib/pilive"
    else
        say "kept /etc/pilive (config and key) and /var/lib/pilive (state): --purge removes them"
    fi
}

# --- main ----------------------------------------------------------------------------------------

if [ "$action" = print-packages ]; then
    print_packages
    exit 0
fi
[ "$(id -u)" = 0 ] || die "run as root (sudo $0 ...)"
umask 022
case $action in
    install) do_install ;;
    uninstall) do_uninstall ;;
esac
