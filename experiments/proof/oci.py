#!/usr/bin/env python3
"""Writes a one-layer OCI image archive (what `ctr images import` takes) from local files.

There is no registry and no container engine here, so images are assembled from binaries
built on this machine.

usage: oci.py OUT.tar NAME:TAG --entrypoint JSON_LIST [--user UID] [--env K=V ...]
              FILE_SPEC ...
FILE_SPEC: SRC=DEST (file copied with its mode), @DEST (empty folder) or DEST->TARGET (symlink)
"""
import argparse
import hashlib
import io
import json
import os
import tarfile

# Fixed times and owners make the same inputs give the same digests.
EPOCH = 0


def layer(specs):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made = set()

        def folders(path):
            parts = path.strip("/").split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in made:
                    made.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
                    tar.addfile(info)

        for spec in specs:
            if "->" in spec:
                dest, target = spec.split("->", 1)
                folders(dest)
                info = tarfile.TarInfo(dest.strip("/"))
                info.type, info.linkname, info.mtime = tarfile.SYMTYPE, target, EPOCH
                tar.addfile(info)
            elif spec.startswith("@"):
                dest = spec[1:].strip("/") + "/x"
                folders(dest)
            else:
                src, dest = spec.split("=", 1)
                if dest.strip("/") in made:
                    continue  # the same file named twice (a library the program needs, too)
                made.add(dest.strip("/"))
                folders(dest)
                with open(src, "rb") as f:
                    data = f.read()
                info = tarfile.TarInfo(dest.strip("/"))
                info.size, info.mtime = len(data), EPOCH
                info.mode = os.stat(src).st_mode & 0o7777
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def blob(tar, data):
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size, info.mtime = len(data), EPOCH
    tar.addfile(info, io.BytesIO(data))
    return f"sha256:{digest}", len(data)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("name")
    p.add_argument("--entrypoint", type=json.loads)
    p.add_argument("--cmd", type=json.loads, help="the image's Cmd (a shell form is what `CMD app` writes)")
    p.add_argument("--user", default="")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("files", nargs="+")
    a = p.parse_args()

    rootfs = layer(a.files)
    with tarfile.open(a.out, "w") as tar:
        layer_digest, layer_size = blob(tar, rootfs)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                **({"Entrypoint": a.entrypoint} if a.entrypoint else {}),
                **({"Cmd": a.cmd} if a.cmd else {}),
                "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"] + a.env,
                "User": a.user,
            },
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        }
        config_digest, config_size = blob(tar, json.dumps(config).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest, "size": layer_size}],
        }
        manifest_digest, manifest_size = blob(tar, json.dumps(manifest).encode())
        index = {
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": manifest_size,
                "annotations": {"io.containerd.image.name": a.name,
                                "org.opencontainers.image.ref.name": a.name.rsplit(":", 1)[-1]},
            }],
        }
        for name, data in (("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                           ("index.json", json.dumps(index).encode())):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), EPOCH
            tar.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    main()
