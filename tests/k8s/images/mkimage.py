#!/usr/bin/env python3
"""Packs files into an image archive that `ctr images import` reads (the
`docker save` layout: manifest.json, the image config and one layer tar), so
the test harness (tests/k8s/) has its images without a registry.

    mkimage.py --tag vgpuenv.local/pause:harness --out pause.tar \
        --entrypoint /pause --file /tmp/pause:/pause

--file SRC:DST copies SRC (mode kept); --link DST:TARGET adds a symlink; --dir
DST an empty directory. The archive is byte-for-byte reproducible (fixed
mtimes and owners, sorted entries), so its digest names its content.
"""
import argparse, hashlib, io, json, os, sys, tarfile


def add_parents(tar, path, seen):
    parts = path.strip("/").split("/")[:-1]
    for i in range(len(parts)):
        d = "/".join(parts[: i + 1])
        if d not in seen:
            seen.add(d)
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)


def layer(files, links, dirs):
    buf, seen = io.BytesIO(), set()
    entries = sorted([(d, "dir", None) for d in dirs] + [(dst, "file", src) for src, dst in files] +
                     [(dst, "link", tgt) for dst, tgt in links])
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dst, kind, what in entries:
            add_parents(tar, dst, seen)
            name = dst.strip("/")
            info = tarfile.TarInfo(name)
            if kind == "dir":
                if name in seen:
                    continue
                seen.add(name)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, what, 0o777
                tar.addfile(info)
            else:
                st = os.stat(what)
                info.size, info.mode = st.st_size, st.st_mode & 0o7777
                with open(what, "rb") as f:
                    tar.addfile(info, f)
    return buf.getvalue()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tag", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--entrypoint", action="append", default=[])
    p.add_argument("--file", action="append", default=[])
    p.add_argument("--link", action="append", default=[])
    p.add_argument("--dir", action="append", default=[])
    a = p.parse_args()
    files = [tuple(f.split(":", 1)) for f in a.file]
    links = [tuple(l.split(":", 1)) for l in a.link]
    for src, _ in files:
        if not os.path.isfile(src):
            sys.exit(f"mkimage: {src}: no such file")
    blob = layer(files, links, a.dir)
    diff_id = "sha256:" + hashlib.sha256(blob).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": a.entrypoint or None, "Env": ["PATH=/bin:/usr/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tests/k8s/images/mkimage.py"}],
    }, sort_keys=True).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = diff_id[7:] + "/layer.tar"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [a.tag], "Layers": [layer_name]}]).encode()
    tmp = a.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as out:
        for name, data in ((diff_id[7:], None), (layer_name, blob), (config_name, config),
                           ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                out.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                out.addfile(info, io.BytesIO(data))
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
