# Shared by the deploy tests (tests/deploy/*.sh; docs/deploy.md). Source it.
#
#   deploy_base_tarball      prints the path of a Debian bookworm minbase root
#                            filesystem as a .tar, made with debootstrap once
#                            and cached under $WL_DEPLOY_CACHE
#   deploy_chroot_up DIR     unpacks it into DIR and mounts proc/sys/dev there
#   deploy_chroot_down DIR   unmounts and removes DIR (idempotent; for traps)
#   deploy_deb BUILD         prints the path of BUILD's waverless_*.deb,
#                            building it (cpack) if missing or older than the
#                            binary, the console, deploy/ or the packaging

WL_DEPLOY_CACHE=${WL_DEPLOY_CACHE:-/var/cache/waverless-test}
WL_DEBIAN_MIRROR=${WL_DEBIAN_MIRROR:-http://deb.debian.org/debian}

deploy_base_tarball() {
  local tar=$WL_DEPLOY_CACHE/bookworm-minbase.tar
  if [ ! -s "$tar" ]; then
    mkdir -p "$WL_DEPLOY_CACHE"
    local root
    root=$(mktemp -d "$WL_DEPLOY_CACHE/debootstrap-XXXXXX")
    # ca-certificates for nothing here; curl to call the node from inside.
    debootstrap --variant=minbase --include=curl,ca-certificates bookworm "$root" \
      "$WL_DEBIAN_MIRROR" >"$WL_DEPLOY_CACHE/debootstrap.log" 2>&1 ||
      { tail -20 "$WL_DEPLOY_CACHE/debootstrap.log" >&2; rm -rf "$root"; return 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$root"
  fi
  echo "$tar"
}

deploy_chroot_up() {
  local dir=$1 tar
  tar=$(deploy_base_tarball) || return 1
  mkdir -p "$dir"
  tar -C "$dir" -xf "$tar"
  chmod 755 "$dir"  # the tar's "." came from a mktemp -d (0700)
  mount -t proc proc "$dir/proc"
  mount --rbind /sys "$dir/sys" && mount --make-rslave "$dir/sys"
  mount --rbind /dev "$dir/dev" && mount --make-rslave "$dir/dev"
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  # Services never start from a package's postinst inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
  chmod 755 "$dir/usr/sbin/policy-rc.d"
}

deploy_chroot_down() {
  local dir=$1
  [ -d "$dir" ] || return 0
  local m
  # Deepest mount points first.
  for m in $(awk -v d="$dir" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf --one-file-system "$dir"
}

WL_DEPLOY_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

deploy_deb() {
  local build=$1 deb
  deb=$(ls -t "$build"/waverless_*_amd64.deb 2>/dev/null | head -1)
  # stale: the binary, the console, the units or the packaging changed
  if [ -z "$deb" ] || [ "$build/waverless" -nt "$deb" ] || [ "$build/ui/index.html" -nt "$deb" ] ||
     [ -n "$(find "$WL_DEPLOY_SRC/deploy" "$WL_DEPLOY_SRC/cmake/Packaging.cmake" -newer "$deb" | head -1)" ]; then
    (cd "$build" && cpack -G DEB >cpack.log 2>&1) || { tail -30 "$build/cpack.log" >&2; return 1; }
    deb=$(ls -t "$build"/waverless_*_amd64.deb | head -1)
  fi
  echo "$deb"
}
