#!/bin/sh
# Buildroot post-build ($1 = TARGET_DIR): what the overlay cannot carry.
set -eu
target=$1
board=$(dirname "$0")

# Mount points on the read-only root, and state kept on /data.
mkdir -p "$target/data" "$target/boot/efi"
ln -sf /data/etc/machine-id "$target/etc/machine-id"

# The RAUC keyring: the operator's CA (EDGEREC_RAUC_KEYS=dir with ca.cert.pem,
# signing.key.pem, signing.cert.pem), else development keys made once in
# $BASE_DIR/rauc-keys (see rauc/README.md: not for a fleet).
keys=${EDGEREC_RAUC_KEYS:-$BASE_DIR/rauc-keys}
PATH=$HOST_DIR/bin:$PATH "$board/rauc/dev-keys" "$keys"
install -D -m 0644 "$keys/ca.cert.pem" "$target/etc/rauc/keyring.pem"

version=$(git -C "$BR2_EXTERNAL_EDGEREC_PATH" describe --always --dirty 2> /dev/null || echo unknown)
echo "edgerec $version (Buildroot $BR2_VERSION)" > "$target/etc/edgerec-release"
