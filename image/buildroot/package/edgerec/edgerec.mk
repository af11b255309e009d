################################################################################
#
# edgerec
#
################################################################################

# The daemon comes from the checkout this br2-external lives in.
EDGEREC_VERSION = 0.1.0
EDGEREC_SITE = $(BR2_EXTERNAL_EDGEREC_PATH)/../..
EDGEREC_SITE_METHOD = local
EDGEREC_LICENSE = Apache-2.0
# A developer's build products and Buildroot output trees stay out of the copy.
EDGEREC_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /target --exclude /.git --exclude /extensions/target \
	--exclude /image/buildroot/output --exclude '/appliance/*/fuzz/target' \
	--exclude '/appliance/*/fuzz/corpus' --exclude /bench/results

# The workspace member with the binary; cargo finds the workspace (and its
# Cargo.lock) above it.
EDGEREC_SUBDIR = appliance/edgerec
# aws-lc-sys (rustls' crypto) builds C, with cmake when the host has one.
EDGEREC_DEPENDENCIES = $(BR2_CMAKE_HOST_DEPENDENCY)

# pkg-cargo vendors crates as a download post-process, and a `local` site has
# no download step: vendor right after the rsync instead (this needs the
# network, like every Buildroot download), so the build can stay --offline.
define EDGEREC_CARGO_VENDOR
	cd $(@D) && mkdir -p .cargo && \
		$(HOST_MAKE_ENV) $(PKG_CARGO_ENV) \
		cargo vendor --locked --manifest-path Cargo.toml VENDOR > .cargo/config.toml
endef
EDGEREC_POST_RSYNC_HOOKS += EDGEREC_CARGO_VENDOR

# `cargo install` (the infrastructure's default) would build the workspace a
# second time in its own target directory: install what the build made.
define EDGEREC_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 \
		$(@D)/target/$(RUSTC_TARGET_NAME)/$(if $(BR2_ENABLE_DEBUG),debug,release)/edgerec \
		$(TARGET_DIR)/usr/bin/edgerec
endef

$(eval $(cargo-package))
