#!/usr/bin/env python3
"""Forges a hostile image archive from one `docker save` wrote, for the load tests.

usage: forge_image_archive.py SAVED OUT MODE NAME

The forged archive names its image NAME (in manifest.json and repositories); the id the image
would have in dockerd (the sha256 of the last configuration written at its path) is printed.
MODE:
  named      nothing else changed (the control: this one loads)
  label      the configuration carries a label under berth's reserved prefix (berth.quota)
  onbuild    the configuration has an ONBUILD trigger
  legacy     no manifest.json (the format of Docker before 1.10, named by "repositories")
  unnamed    manifest.json names no image (RepoTags empty)
  symlink    manifest.json is a symbolic link to the real manifest, under another name
  twice      the configuration appears twice, the second one with that label
  foreign    the image lists a foreign layer (LayerSources)
"""
import hashlib
import io
import json
import sys
import tarfile


def main():
    saved, out, mode, name = sys.argv[1:5]
    files = {}
    order = []
    with tarfile.open(saved) as src:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            files[member.name] = (member, data)
            order.append(member.name)
    manifest = json.loads(files["manifest.json"][1])
    config_name = manifest[0]["Config"]
    config = json.loads(files[config_name][1])
    manifest[0]["RepoTags"] = [name]
    repo, tag = name.rsplit(":", 1)
    repositories = {repo: {tag: config_name.split(".")[0]}}
    extra = []
    if mode in ("label", "twice"):
        labelled = json.loads(json.dumps(config))
        labelled["config"].setdefault("Labels", {})
        labelled["config"]["Labels"] = dict(labelled["config"]["Labels"] or {}, **{"berth.quota": "none"})
        if mode == "label":
            config = labelled
        else:
            extra.append((config_name, json.dumps(labelled).encode()))
    if mode == "onbuild":
        config["config"]["OnBuild"] = ["RUN id"]
    if mode == "unnamed":
        manifest[0]["RepoTags"] = []
    if mode == "foreign":
        manifest[0]["LayerSources"] = {
            "sha256:" + "0" * 64: {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar",
                                   "size": 1, "digest": "sha256:" + "1" * 64,
                                   "urls": ["http://127.0.0.1:9/layer"]}}

    def add(tar, name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))

    last_config = json.dumps(config).encode()
    for n, data in extra:
        if n == config_name:
            last_config = data
    print("sha256:" + hashlib.sha256(last_config).hexdigest())
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as dst:
        for n in order:
            member, data = files[n]
            if n in ("manifest.json", "repositories"):
                continue
            if n == config_name:
                data = json.dumps(config).encode()
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
        for n, data in extra:
            add(dst, n, data)
        add(dst, "repositories", json.dumps(repositories).encode())
        if mode == "symlink":
            add(dst, "real-manifest.json", json.dumps(manifest).encode())
            link = tarfile.TarInfo("manifest.json")
            link.type = tarfile.SYMTYPE
            link.linkname = "real-manifest.json"
            dst.addfile(link)
        elif mode != "legacy":
            add(dst, "manifest.json", json.dumps(manifest).encode())


if __name__ == "__main__":
    main()
