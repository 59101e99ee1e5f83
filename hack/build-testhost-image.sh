#!/usr/bin/env bash
# Builds the local test-host image: Debian 12 that boots systemd, made with
# debootstrap and `podman import`, so no container registry is needed.
# The image is cached; pass --force to rebuild it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ "${1:-}" != "--force" ] && qa_sudo podman image exists "$QA_IMAGE"; then
  qa_log "test-host image $QA_IMAGE is cached"
  exit 0
fi

mirror=${QA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
rootfs=$(mktemp -d "${TMPDIR:-/tmp}/qa-rootfs.XXXXXX")
trap 'qa_sudo rm -rf "$rootfs"' EXIT

qa_log "debootstrap Debian 12 into $rootfs"
qa_sudo debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,python3,python3-apt,sudo,dbus,procps,iproute2,ca-certificates \
  bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"

# A container has no consoles or kernel tuning to manage; these units only fail there.
for unit in getty@tty1.service console-getty.service systemd-udevd.service \
            systemd-modules-load.service sys-kernel-config.mount; do
  qa_sudo ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
echo 'qa-testhost' | qa_sudo tee "$rootfs/etc/hostname" >/dev/null
# No package lists: the roles must refresh them as on any fresh host.
qa_sudo rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/*
qa_sudo touch -d 2000-01-01 "$rootfs"/var/lib/apt/lists

qa_log "import $QA_IMAGE"
qa_sudo tar -C "$rootfs" -c . | qa_sudo podman import --quiet \
  --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$QA_IMAGE" >/dev/null
qa_log "built $QA_IMAGE"
