#!/usr/bin/env bash
# User names from NSS in every build (issue 25): a user who exists only in
# a non-files NSS source (libnss-extrausers, standing in for LDAP or SSSD)
# is named by the static abslock, which links musl (no NSS), as by the
# glibc one. Needs root (it adds the source to /etc/nsswitch.conf and
# restores the file on exit); run after scripts/build-static.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "check-nss: needs root; skipped"; exit 0; fi
static=target/x86_64-unknown-linux-musl/release/abslock
glibc=${ABSLOCK_GLIBC_BIN:-target/release/abslock}
dpkg -s libnss-extrausers >/dev/null 2>&1 ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libnss-extrausers >/dev/null; }
saved=$(mktemp -d)
cp -a /etc/nsswitch.conf "$saved/"
[ -e /var/lib/extrausers/passwd ] && cp -a /var/lib/extrausers/passwd "$saved/passwd"
holder=
restore() {
  [ -n "$holder" ] && kill "$holder" 2>/dev/null || true
  cp -a "$saved/nsswitch.conf" /etc/nsswitch.conf
  if [ -e "$saved/passwd" ]; then cp -a "$saved/passwd" /var/lib/extrausers/passwd; else rm -f /var/lib/extrausers/passwd; fi
  rm -rf "$saved"
}
trap restore EXIT
mkdir -p /var/lib/extrausers
echo "ldapbob:x:4242:4242:an NSS-only user:/nonexistent:/usr/sbin/nologin" >> /var/lib/extrausers/passwd
sed -i 's/^passwd:\(.*\)$/passwd:\1 extrausers/' /etc/nsswitch.conf
getent passwd 4242 | grep -q '^ldapbob:'
! grep -q '^ldapbob:' /etc/passwd
name="ci-nss-$$"
setpriv --reuid 4242 --regid 4242 --clear-groups "$static" run --system "$name" -- sleep 30 &
holder=$!
until "$static" status --system --trust-any "$name" >/dev/null 2>&1; do sleep 0.05; done
for bin in "$static" "$glibc"; do
  said=$("$bin" status --system --trust-any "$name")
  grep -q 'uid 4242 (ldapbob)' <<<"$said" || { echo "check-nss: $bin did not name uid 4242: $said" >&2; exit 1; }
done
echo "check-nss: uid 4242 is ldapbob in the static and the glibc build"
