"""The real node's images: an OCI image layout that ctr imports, reproducible to the byte."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from devcluster.images import Image, binary_layer, write_image_archive


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def test_the_archive_is_an_oci_layout_naming_each_image(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF not really")
    layer = binary_layer("tool", binary)
    images = [
        Image("localhost/x/tool:a", (layer,), ("/tool",), "65532"),
        Image("localhost/x/tool:b", (layer,), ("/tool", "serve"), "0"),
    ]
    digests = write_image_archive(images, tmp_path / "images.tar")
    files = _members(tmp_path / "images.tar")

    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    names = [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]]
    assert names == ["localhost/x/tool:a", "localhost/x/tool:b"]
    assert [m["digest"] for m in index["manifests"]] == [digests[n] for n in names]
    manifest = json.loads(files["blobs/sha256/" + digests["localhost/x/tool:b"][7:]])
    config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"][7:]])
    assert config["config"]["User"] == "0"
    assert config["config"]["Entrypoint"] == ["/tool", "serve"]
    # An uncompressed layer's digest is also its diff_id, and both images share it.
    assert config["rootfs"]["diff_ids"] == [manifest["layers"][0]["digest"]]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        (member,) = tar.getmembers()
    assert (member.name, member.mode, member.mtime, member.uid) == ("tool", 0o755, 0, 0)


def test_the_same_inputs_give_the_same_digests(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(b"same bytes")
    first = write_image_archive(
        [Image("localhost/x/t:1", (binary_layer("t", binary),), ("/t",), "1")], tmp_path / "a.tar"
    )
    second = write_image_archive(
        [Image("localhost/x/t:1", (binary_layer("t", binary),), ("/t",), "1")], tmp_path / "b.tar"
    )
    assert first == second
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
