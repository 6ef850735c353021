#!/usr/bin/env bash
# Writes OUTDIR/docker-credential-icr-<version>-<release>.src.rpm: the source RPM that
# distributions build from, as Fedora and openSUSE build Rust packages. It holds
#
#   docker-credential-icr-<version>.tar.gz         the crate's source (the files git tracks,
#                                                  and any new ones it does not ignore)
#   docker-credential-icr-<version>-vendor.tar.gz  its dependencies (`cargo vendor --locked`),
#                                                  as vendor/, unpacked inside the source
#   docker-credential-icr.spec                     whose %build runs
#                                                  `cargo build --release --frozen --offline`
#
# so that `rpmbuild --rebuild` of it needs no network.
#
#   packaging/rpm/srpm.sh OUTDIR
#
# Needs git, cargo (with the crates of Cargo.lock reachable or cached, for `cargo vendor`),
# GNU tar and rpmbuild. The tarballs are reproducible: sorted, owned by root, dated by the last
# commit.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
OUT=$1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NAME=docker-credential-icr
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)
SPEC="$ROOT/packaging/rpm/$NAME.spec"
SPEC_VERSION=$(sed -n 's/^Version: *//p' "$SPEC")
[ "$VERSION" = "$SPEC_VERSION" ] || { echo "Cargo.toml says $VERSION, the spec $SPEC_VERSION" >&2; exit 1; }
for tool in git cargo tar rpmbuild; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is needed" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/icr-srpm.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
SRC="$WORK/$NAME-$VERSION"
SOURCES="$WORK/SOURCES"
mkdir -p "$SRC" "$SOURCES" "$OUT"
EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)
TAR=(tar --sort=name --mtime="@$EPOCH" --owner=0 --group=0 --numeric-owner --format=gnu)

# The source: what git tracks, with the work tree's content, and new files it does not ignore.
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard) |
    (cd "$ROOT" && while IFS= read -r -d '' file; do [ -e "$file" ] && printf '%s\0' "$file"; done) |
    (cd "$ROOT" && tar --null -T - -cf -) | tar -xf - -C "$SRC"
"${TAR[@]}" -czf "$SOURCES/$NAME-$VERSION.tar.gz" -C "$WORK" "$NAME-$VERSION"

# The dependencies, for every package of the workspace's Cargo.lock.
(cd "$SRC" && cargo vendor --locked --versioned-dirs --quiet vendor >/dev/null)
"${TAR[@]}" -czf "$SOURCES/$NAME-$VERSION-vendor.tar.gz" -C "$SRC" vendor

cp "$SPEC" "$SOURCES/"
SOURCE_DATE_EPOCH=$EPOCH rpmbuild -bs "$SPEC" --quiet \
    --define "_topdir $WORK/rpmbuild" \
    --define "_sourcedir $SOURCES" \
    --define "_srcrpmdir $OUT" \
    --define "source_date_epoch_from_changelog 0" \
    --define "use_source_date_epoch_as_buildtime 1" \
    --define "clamp_mtime_to_source_date_epoch 1"
ls "$OUT"/"$NAME-$VERSION"-*.src.rpm
