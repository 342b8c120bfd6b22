"""Container images for the real node, built locally as one OCI image-layout tarball.

There is no registry to pull from, so every image the real node runs is written here and
imported into containerd (``ctr images import``). An image is a list of uncompressed layer
tars (a layer's digest is then also its diff_id) and a config; files carry mtime 0 and
owner 0:0, so the same inputs give the same digests and images share their layers.

Images:
- ``pause``: the Pod sandbox, ``netserver pause`` (waits for SIGTERM), user 65535.
- ``netserver:nonroot`` / ``netserver:root``: busybox (a shell, wget, nslookup for
  ``kubectl exec``) plus ``netserver serve``: HTTP on each TCP port and an echo on each UDP
  port named in its arguments, answering "<hostname> <port>". The same layers, user 65532
  or 0: the root one is what the kubelet refuses under ``runAsNonRoot``.
- ``netserver:nonroot-2``: the nonroot image again as a distinct image (its config adds
  one environment variable; the layers are shared), so that a rollout can change the image
  as a new release would (the traffic benchmark's image rollout).
- ``coredns``: the cluster DNS, a static CoreDNS binary, user 65532.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "COREDNS_IMAGE",
    "NETSERVER_IMAGE",
    "NETSERVER_NEXT_IMAGE",
    "NETSERVER_ROOT_IMAGE",
    "PAUSE_IMAGE",
    "Image",
    "write_image_archive",
]

REGISTRY = "localhost/exposedapp"
PAUSE_IMAGE = f"{REGISTRY}/pause:1"
NETSERVER_IMAGE = f"{REGISTRY}/netserver:nonroot"
NETSERVER_ROOT_IMAGE = f"{REGISTRY}/netserver:root"
NETSERVER_NEXT_IMAGE = f"{REGISTRY}/netserver:nonroot-2"
COREDNS_IMAGE = f"{REGISTRY}/coredns:1"
NONROOT_UID = 65532

_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
_OCI_INDEX = "application/vnd.oci.image.index.v1+json"

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\nnonroot:x:65532:\nnogroup:x:65534:\n"


@dataclass(frozen=True)
class Image:
    """One image: its reference, its layers (tar bytes, bottom first) and its process."""

    reference: str
    layers: tuple[bytes, ...]
    entrypoint: tuple[str, ...]
    user: str
    env: tuple[str, ...] = ("PATH=/bin",)


class _LayerWriter:
    """Builds one reproducible layer tar in memory."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.tar = tarfile.open(  # noqa: SIM115 (closed by finish())
            fileobj=self.buffer, mode="w", format=tarfile.PAX_FORMAT
        )
        self.directories: set[str] = set()

    def _info(self, name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, 0
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    def directory(self, name: str, mode: int = 0o755) -> None:
        parent = name.rpartition("/")[0]
        if parent and parent not in self.directories:
            self.directory(parent)
        if name not in self.directories:
            self.directories.add(name)
            self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode))

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        parent = name.rpartition("/")[0]
        if parent:
            self.directory(parent)
        info = self._info(name, tarfile.REGTYPE, mode)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))

    def symlink(self, name: str, target: str) -> None:
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.tar.addfile(info)

    def finish(self) -> bytes:
        self.tar.close()
        return self.buffer.getvalue()


def busybox_layer(busybox: Path) -> bytes:
    """A static busybox with one symlink per applet, /etc/passwd, /etc/group and /tmp."""
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    layer = _LayerWriter()
    layer.file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in sorted(set(applets) - {"busybox"}):
        layer.symlink(f"bin/{applet}", "busybox")
    layer.file("etc/passwd", PASSWD.encode())
    layer.file("etc/group", GROUP.encode())
    layer.directory("tmp", 0o1777)
    layer.directory("home/nonroot", 0o755)
    return layer.finish()


def binary_layer(name: str, binary: Path) -> bytes:
    """A layer holding one static binary at /<name>."""
    layer = _LayerWriter()
    layer.file(name, binary.read_bytes(), 0o755)
    return layer.finish()


def local_images(busybox: Path, netserver: Path, coredns: Path) -> tuple[Image, ...]:
    """Every image the real node needs, from the three static binaries."""
    base = busybox_layer(busybox)
    server = binary_layer("netserver", netserver)
    serve = ("/netserver", "serve")
    return (
        Image(PAUSE_IMAGE, (server,), ("/netserver", "pause"), "65535"),
        Image(NETSERVER_IMAGE, (base, server), serve, str(NONROOT_UID)),
        Image(NETSERVER_ROOT_IMAGE, (base, server), serve, "0"),
        Image(
            NETSERVER_NEXT_IMAGE,
            (base, server),
            serve,
            str(NONROOT_UID),
            ("PATH=/bin", "NETSERVER_RELEASE=2"),
        ),
        Image(COREDNS_IMAGE, (binary_layer("coredns", coredns),), ("/coredns",), "65532"),
    )


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(document: Mapping[str, object]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def write_image_archive(images: Sequence[Image], archive: Path) -> dict[str, str]:
    """Write an OCI image-layout tarball holding ``images``; return reference -> digest.

    The index names each manifest with ``io.containerd.image.name``, which is what
    ``ctr images import`` tags it with.
    """
    blobs: dict[str, bytes] = {}
    manifests: list[dict[str, object]] = []
    for image in images:
        layer_digests = []
        for layer in image.layers:
            blobs[_digest(layer)] = layer
            layer_digests.append(_digest(layer))
        config = _canonical(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {
                    "Entrypoint": list(image.entrypoint),
                    "User": image.user,
                    "Env": list(image.env),
                    "WorkingDir": "/",
                },
                "rootfs": {"type": "layers", "diff_ids": layer_digests},
            }
        )
        blobs[_digest(config)] = config
        manifest = _canonical(
            {
                "schemaVersion": 2,
                "mediaType": _OCI_MANIFEST,
                "config": {
                    "mediaType": _OCI_CONFIG,
                    "digest": _digest(config),
                    "size": len(config),
                },
                "layers": [
                    {"mediaType": _OCI_LAYER, "digest": _digest(layer), "size": len(layer)}
                    for layer in image.layers
                ],
            }
        )
        blobs[_digest(manifest)] = manifest
        manifests.append(
            {
                "mediaType": _OCI_MANIFEST,
                "digest": _digest(manifest),
                "size": len(manifest),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"io.containerd.image.name": image.reference},
            }
        )
    index = _canonical({"schemaVersion": 2, "mediaType": _OCI_INDEX, "manifests": manifests})
    writer = _LayerWriter()
    writer.file("oci-layout", _canonical({"imageLayoutVersion": "1.0.0"}))
    writer.file("index.json", index)
    for digest, data in sorted(blobs.items()):
        writer.file(f"blobs/sha256/{digest.removeprefix('sha256:')}", data)
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(writer.finish())
    return {image.reference: str(m["digest"]) for image, m in zip(images, manifests, strict=True)}
