"""A CNI's version, read from its image tag, and version ranges compared with it."""

from __future__ import annotations

import re

Version = tuple[int, int, int]

_TAG = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?![\d.])")


def parse_version(text: str) -> Version | None:
    """``v1.16.3``, ``1.16``, ``v1.15.10-gke.9``, ``1.12.10-1`` -> (1, 16, 3) ...; None when the
    text does not start with a version (``latest``, ``master``, a commit)."""
    found = _TAG.match(text.strip())
    if not found:
        return None
    return int(found[1]), int(found[2]), int(found[3] or 0)


def show(version: Version) -> str:
    return ".".join(map(str, version))


def image_version(image: str) -> tuple[Version | None, str, str]:
    """(version, its text, where it was read or why it is unknown) from an image reference: the
    tag names the version; a reference pinned by digest alone, or a tag such as ``latest``, does not."""
    name = image.rsplit("/", 1)[-1]
    name, _, digest = name.partition("@")
    if ":" not in name:
        why = "pinned by digest only" if digest else "no tag"
        return None, "", f"image {image} has {why}: its version is unknown"
    tag = name.split(":", 1)[1]
    version = parse_version(tag)
    if version is None:
        return None, "", f"image {image}: the tag {tag!r} names no version"
    return version, show(version), f"image {image}"


def in_range(version: Version, since: str | None, until: str | None) -> bool:
    """Whether ``since <= version < until`` (either bound may be absent)."""
    low = parse_version(since) if since else None
    high = parse_version(until) if until else None
    return (low is None or version >= low) and (high is None or version < high)


def describe_range(since: str | None, until: str | None) -> str:
    if since and until:
        return f"from v{since} until v{until} (not in v{until} and later)"
    if since:
        return f"from v{since}"
    if until:
        return f"before v{until}"
    return "in every version"
