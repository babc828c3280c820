#!/usr/bin/env python3
"""mkarchive.py KIND OUT [ARG]: archives for the image import tests, built
locally with tarfile (and the zstd program for zstd).

Good archives
  rootfs OUT            a small root filesystem; compression from OUT's
                        extension (.tar .tar.gz .tar.xz .tar.bz2 .tar.zst)
  docker OUT            docker save, two layers: the second whiteouts a file
                        and a directory and makes a directory opaque
  docker-linked OUT     docker save whose layer.tar is a symlink to another
                        member (docker save does that for shared layers)
  docker-baddiff OUT    docker save whose config has a wrong diff_id (refused)
  docker-badconfig OUT  docker save whose config is not named by its digest
                        (refused)
  oci OUT [FLAGS]       OCI layout directory: index -> nested index (arm64,
                        amd64) -> manifest -> the two docker layers, gzip.
                        FLAGS (comma-separated): tar (a tar of the layout),
                        zstd (second layer tar+zstd), corrupt (second blob
                        replaced, its name kept: a digest mismatch), docker
                        (as docker save 25 writes it: index.json names the
                        manifest directly, and a manifest.json is added),
                        nolayout (no oci-layout nor index.json: docker save
                        with blobs/sha256/<hex> layers)
  escape-layers OUT C   docker save: layer 1 has C's directories, link -> C
                        (absolute) and up -> ../../../..; layer 2 writes
                        link/pwned and up/tmp/pwned2 (must stay inside the image)
  replace OUT C         a tar that replaces a symlink to C/file by a file, a
                        symlink to C by a directory, a hardlinked file
  pack OUT DIR          a tar of DIR (compression from OUT's extension)
  docker-pack OUT DIR   docker save with DIR as its one layer

Hostile archives (refused): evil-dotdot, evil-abs, evil-symlink,
evil-symlink-nested, evil-hardlink-abs, evil-hardlink-dotdot,
evil-hardlink-symlink, evil-wh-dot, evil-wh-dotdot, evil-wh-traverse,
evil-wh-dir, evil-dotdot-deep (OUT C: plain tars), evil-manifest,
evil-member-link, evil-config (OUT: docker save)

Limits: big OUT BYTES, many OUT N, layers OUT N, bigjson OUT BYTES,
longpath OUT LEN, deep OUT N (N nested components), deep-layers OUT (nesting
past the limit through a lower layer's symlink)
"""
import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tarfile

MTIME = 1700000000


def entry(name, kind="file", data=b"", mode=None, uid=0, gid=0, link="", mtime=MTIME,
          xattrs=None, dev=(0, 0)):
    t = tarfile.TarInfo(name)
    t.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
              "hard": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[kind]
    t.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    t.uid, t.gid, t.uname, t.gname = uid, gid, "", ""
    t.mtime = mtime
    t.linkname = link
    t.devmajor, t.devminor = dev
    if xattrs:
        t.pax_headers = {"SCHILY.xattr." + k: (v.decode("utf-8", "surrogateescape")
                                               if isinstance(v, bytes) else v)
                         for k, v in xattrs.items()}
    t.size = len(data) if kind == "file" else 0
    return t, (data if kind == "file" else None)


F = lambda n, d=b"", **k: entry(n, "file", d, **k)
D = lambda n, **k: entry(n, "dir", **k)
L = lambda n, target, **k: entry(n, "sym", link=target, **k)
H = lambda n, target, **k: entry(n, "hard", link=target, **k)


def tar_bytes(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for t, data in entries:
            tf.addfile(t, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def compress(raw, path):
    """raw tar bytes, compressed as path's extension says."""
    if path.endswith((".tar.gz", ".tgz")):
        return gzip.compress(raw, mtime=0)
    if path.endswith(".tar.xz"):
        import lzma
        return lzma.compress(raw)
    if path.endswith(".tar.bz2"):
        import bz2
        return bz2.compress(raw)
    if path.endswith(".tar.zst"):
        return subprocess.run(["zstd", "-q", "-c"], input=raw, stdout=subprocess.PIPE,
                              check=True).stdout
    return raw


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def sha(data):
    return hashlib.sha256(data).hexdigest()


CAP_NET_RAW_V2 = struct.pack("<5I", 0x02000000 | 1, 1 << 13, 0, 0, 0)


def rootfs_entries():
    return [
        D("./"),
        D("bin"),
        F("bin/sh", b"#!/bin/true\n", mode=0o755),
        D("etc"),
        F("etc/os-release", b"ID=paddock-test\n", mtime=1234567890),
        H("etc/os-release.hard", "etc/os-release"),
        L("etc/link", "os-release"),
        F("etc/caf\u00e9", b"utf-8 name\n"),
        F("etc/xattrs", b"x\n", xattrs={"user.test": "hello", "trusted.overlay.opaque": "y",
                                         "user.overlay.redirect": "/x"}),
        D("usr"),
        D("usr/bin"),
        F("usr/bin/su", b"su\n", mode=0o4755),
        F("usr/bin/ping", b"ping\n", mode=0o755, xattrs={"security.capability": CAP_NET_RAW_V2}),
        D("home"),
        D("home/user", mode=0o700, uid=1000, gid=1000),
        F("home/user/notes", b"hi\n", mode=0o600, uid=1000, gid=1000),
        D("dev"),
        entry("dev/null", "chr", mode=0o666, dev=(1, 3)),
        D("run"),
        entry("run/fifo", "fifo"),
        F("implicit/a/b/file", b"parents not listed\n"),
    ]


def layer1():
    return tar_bytes([
        D("etc"), F("etc/keep", b"keep\n"), F("etc/gone", b"gone\n"),
        D("opq"), F("opq/old1", b"1\n"), D("opq/sub"), F("opq/sub/old2", b"2\n"),
        D("usr"), D("usr/bin"), F("usr/bin/tool", b"tool\n", mode=0o755), L("bin", "usr/bin"),
        D("wh"), D("wh/dir"), F("wh/dir/x", b"x\n"),
    ])


def layer2():
    # This layer's own opq/new comes before the opaque marker: the marker must
    # not remove it.
    return tar_bytes([
        D("opq"), F("opq/new", b"new\n"), F("opq/.wh..wh..opq"),
        D("etc"), F("etc/.wh.gone"), F("etc/.wh.never-existed"),
        F("bin/added", b"through the lower layer's symlink\n"),
        H("etc/keep-link", "etc/keep"),
        D("wh"), F("wh/.wh.dir"),
    ])


def docker_archive(layers, extra=(), layer_names=None, config_name=None, manifest=None,
                   diff_ids=None):
    """docker save (legacy layout): <id>/layer.tar, <config>.json, manifest.json."""
    diff_ids = diff_ids or ["sha256:" + sha(l) for l in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cfg = config_name or sha(config) + ".json"
    ids = [sha(("%d" % i).encode() + l) for i, l in enumerate(layers)]
    names = layer_names or [i + "/layer.tar" for i in ids]
    ents = []
    for i, l in zip(ids, layers):
        ents += [D(i), F(i + "/VERSION", b"1.0"), F(i + "/json", b"{}"), F(i + "/layer.tar", l)]
    ents += list(extra)
    ents.append(F(cfg, config))
    m = manifest if manifest is not None else [
        {"Config": cfg, "RepoTags": ["paddock-test:latest"], "Layers": names}]
    ents.append(F("manifest.json", json.dumps(m).encode()))
    ents.append(F("repositories", b"{}"))
    return tar_bytes(ents)


def oci_layout(out, flags):
    blobs = {}

    def blob(data):
        blobs[sha(data)] = data
        return sha(data)

    l1 = gzip.compress(layer1(), mtime=0)
    if "zstd" in flags:
        l2 = subprocess.run(["zstd", "-q", "-c"], input=layer2(), stdout=subprocess.PIPE,
                            check=True).stdout
        l2_type = "application/vnd.oci.image.layer.v1.tar+zstd"
    else:
        l2 = gzip.compress(layer2(), mtime=0)
        l2_type = "application/vnd.oci.image.layer.v1.tar+gzip"
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [
                             "sha256:" + sha(layer1()), "sha256:" + sha(layer2())]}}).encode()

    def desc(media, data, **more):
        d = {"mediaType": media, "digest": "sha256:" + blob(data), "size": len(data)}
        d.update(more)
        return d

    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", config),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", l1),
                   desc(l2_type, l2)]}).encode()
    # A manifest for another architecture, whose blobs are missing: never read.
    other = json.dumps({"schemaVersion": 2, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": "sha256:" + "0" * 64, "size": 2}, "layers": []}).encode()
    nested = json.dumps({"schemaVersion": 2,
                         "mediaType": "application/vnd.oci.image.index.v1+json",
                         "manifests": [
                             desc("application/vnd.oci.image.manifest.v1+json", other,
                                  platform={"architecture": "arm64", "os": "linux"}),
                             desc("application/vnd.oci.image.manifest.v1+json", manifest,
                                  platform={"architecture": "amd64", "os": "linux"}),
                         ]}).encode()
    if "docker" in flags:
        index = json.dumps({"schemaVersion": 2, "manifests": [
            desc("application/vnd.oci.image.manifest.v1+json", manifest,
                 annotations={"io.containerd.image.name": "docker.io/library/t:latest"})]})
    else:
        index = json.dumps({"schemaVersion": 2, "manifests": [
            desc("application/vnd.oci.image.index.v1+json", nested)]})
    if "corrupt" in flags:
        blobs[sha(l2)] = gzip.compress(tar_bytes([F("evil", b"not the layer\n")]), mtime=0)

    files = []
    if "nolayout" not in flags:
        files = [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'), ("index.json", index.encode())]
    if "docker" in flags:
        files.append(("manifest.json", json.dumps([{
            "Config": "blobs/sha256/" + sha(config), "RepoTags": ["t:latest"],
            "Layers": ["blobs/sha256/" + sha(l1), "blobs/sha256/" + sha(l2)]}]).encode()))
    files += [("blobs/sha256/" + h, d) for h, d in sorted(blobs.items())]
    if "tar" in flags:
        write(out, tar_bytes([D("blobs"), D("blobs/sha256")] + [F(n, d) for n, d in files]))
        return
    for n, d in files:
        os.makedirs(os.path.dirname(os.path.join(out, n)) or out, exist_ok=True)
        write(os.path.join(out, n), d)


def pack_dir(src):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        tf.add(src, arcname=".")
    return buf.getvalue()


def evil(kind, c):
    return {
        "evil-dotdot": [F("../escape", b"x")],
        "evil-abs": [F(c + "/abs", b"x")],
        "evil-symlink": [L("link", c), F("link/pwned", b"x")],
        "evil-symlink-nested": [D("d"), L("d/link", c), F("d/link/pwned", b"x")],
        "evil-hardlink-abs": [H("h", "/etc/passwd")],
        "evil-hardlink-dotdot": [H("h", "../x")],
        "evil-hardlink-symlink": [L("link", c), H("h", "link/file")],
        "evil-wh-dot": [D("a"), F("a/.wh..")],
        "evil-wh-dotdot": [D("a"), F("a/.wh...")],
        "evil-wh-traverse": [F(".wh.../../x")],
        "evil-wh-dir": [F("a/.wh.b/c", b"x")],
        "evil-dotdot-deep": [F("a/b/../../../escape", b"x")],
    }[kind]


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    kind, out = argv[1], argv[2]
    arg = argv[3] if len(argv) > 3 else ""
    if kind == "rootfs":
        write(out, compress(tar_bytes(rootfs_entries()), out))
    elif kind == "docker":
        write(out, docker_archive([layer1(), layer2()]))
    elif kind == "docker-baddiff":
        write(out, docker_archive([layer1(), layer2()],
                                  diff_ids=["sha256:" + sha(layer1()), "sha256:" + "1" * 64]))
    elif kind == "docker-badconfig":
        write(out, docker_archive([layer1(), layer2()], config_name="2" * 64 + ".json"))
    elif kind == "docker-linked":
        real = "f" * 64
        l1 = layer1()
        extra = [D(real), F(real + "/layer.tar", l1)]
        data = docker_archive([l1], extra=extra)
        # Point the listed layer at the other member.
        lid = sha(b"0" + l1)
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            ents = [(m, tf.extractfile(m).read() if m.isfile() else None) for m in tf]
        ents = [(L(lid + "/layer.tar", "../" + real + "/layer.tar")
                 if m.name == lid + "/layer.tar" else (m, d)) for m, d in ents]
        write(out, tar_bytes(ents))
    elif kind == "oci":
        oci_layout(out, arg.split(","))
    elif kind == "escape-layers":
        parts = arg.strip("/").split("/")
        inside = [D("/".join(parts[:i + 1])) for i in range(len(parts))]
        write(out, docker_archive([
            tar_bytes(inside + [L("link", arg), L("up", "../../../../../../../.."), D("tmp")]),
            tar_bytes([F("link/pwned", b"x"), F("up/tmp/pwned2", b"x")])]))
    elif kind == "replace":
        write(out, tar_bytes([
            L("x", arg + "/file"), F("x", b"replaced\n"),
            L("d", arg), D("d"), F("d/f", b"in the new directory\n"),
            F("y", b"one\n"), H("z", "y"), F("y", b"two\n"),
        ]))
    elif kind.startswith("evil-") and kind in ("evil-manifest", "evil-member-link", "evil-config"):
        l1 = layer1()
        if kind == "evil-manifest":
            write(out, docker_archive([l1], layer_names=["../../etc/passwd"]))
        elif kind == "evil-config":
            cfg = sha(b"x") + ".json"
            write(out, docker_archive([l1], manifest=[
                {"Config": "../" + cfg, "Layers": [sha(b"0" + l1) + "/layer.tar"]}]))
        else:
            lid = sha(b"0" + l1)
            data = docker_archive([l1])
            with tarfile.open(fileobj=io.BytesIO(data)) as tf:
                ents = [(m, tf.extractfile(m).read() if m.isfile() else None) for m in tf]
            ents = [(L(lid + "/layer.tar", "../../../../etc/passwd")
                     if m.name == lid + "/layer.tar" else (m, d)) for m, d in ents]
            write(out, tar_bytes(ents))
    elif kind.startswith("evil-"):
        write(out, tar_bytes(evil(kind, arg)))
    elif kind == "big":
        write(out, compress(tar_bytes([F("big", b"\0" * int(arg))]), out))
    elif kind == "many":
        write(out, tar_bytes([F("f%d" % i, b"") for i in range(int(arg))]))
    elif kind == "layers":
        write(out, docker_archive([tar_bytes([F("f%d" % i, b"")]) for i in range(int(arg))]))
    elif kind == "bigjson":
        l1 = layer1()
        m = [{"Layers": [sha(b"0" + l1) + "/layer.tar"], "Pad": "x" * int(arg)}]
        write(out, docker_archive([l1], manifest=m))
    elif kind == "longpath":
        n = int(arg)
        parts, left = [], n
        while left > 0:
            c = min(100, left)
            parts.append("d" * c)
            left -= c + 1
        path = "/".join(parts)[:n]
        write(out, tar_bytes([F(path, b"x")]))
    elif kind == "deep":
        write(out, tar_bytes([F("/".join(["d"] * int(arg)), b"x")]))
    elif kind == "deep-layers":
        # Directories at depth 200, reached by a symlink: 100 more below it
        # would nest 300 deep on disk though each path has at most 101 parts.
        down = "/".join(["d"] * 200)
        write(out, docker_archive([
            tar_bytes([D("/".join(["d"] * (i + 1))) for i in range(200)] + [L("deep", down)]),
            tar_bytes([D("deep/" + "/".join(["e"] * (i + 1))) for i in range(100)])]))
    elif kind == "pack":
        write(out, compress(pack_dir(arg), out))
    elif kind == "docker-pack":
        write(out, docker_archive([pack_dir(arg)]))
    else:
        sys.exit("mkarchive.py: unknown kind " + kind)


if __name__ == "__main__":
    main(sys.argv)
