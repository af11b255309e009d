#!/bin/sh
# Buildroot post-image ($1 = BINARIES_DIR): GRUB's config and A/B state on the
# EFI partition, the flashable disk (genimage.cfg), and an update bundle.
set -eu
images=$1
board=$(dirname "$0")
export PATH=$HOST_DIR/bin:$HOST_DIR/sbin:$PATH

install -D -m 0644 "$board/grub.cfg" "$images/efi-part/EFI/BOOT/grub.cfg"
"$board/initial-grubenv" "$images/efi-part/EFI/BOOT/grubenv"

support/scripts/genimage.sh -c "$board/genimage.cfg"

keys=${EDGEREC_RAUC_KEYS:-$BASE_DIR/rauc-keys}
version=$(cat "$TARGET_DIR/etc/edgerec-release" | cut -d' ' -f2)
"$board/rauc/bundle" "$images/rootfs.squashfs" "$version" "$keys" "$images/edgerec-update.raucb"
echo "post-image: $images/disk.img (flash it) and $images/edgerec-update.raucb (install it)"
