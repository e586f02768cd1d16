"""Deterministic data sets: the same bytes on every machine and run.

Bytes come from AES-128-CTR over zeros with a fixed key (`openssl enc`), or, without
openssl, from a SHA-256 counter stream; the generator is recorded with the results.
Data sets are cached under bench/cache/data/<name>/ (git-ignored) and reused when the
marker file says they are complete.
"""

import hashlib
import os
import shutil
import subprocess

KEY = "5eed5eed5eed5eed5eed5eed5eed5eed"  # fixed "random seed"
IV = "00000000000000000000000000000000"


def stream(nbytes, salt):
    """Yield chunks of NBYTES deterministic bytes; SALT picks an independent stream."""
    iv = hashlib.sha256(salt.encode()).hexdigest()[:32]
    if shutil.which("openssl"):
        p = subprocess.Popen(["openssl", "enc", "-aes-128-ctr", "-K", KEY, "-iv", iv, "-nosalt",
                              "-in", "/dev/zero"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        left = nbytes
        while left > 0:
            chunk = p.stdout.read(min(left, 1 << 20))
            if not chunk:
                raise RuntimeError("openssl enc stopped early")
            left -= len(chunk)
            yield chunk
        p.kill()
        p.wait()
    else:
        ctr = 0
        left = nbytes
        while left > 0:
            block = b"".join(hashlib.sha256(f"{salt}:{ctr}:{i}".encode()).digest()
                             for i in range(2048))
            ctr += 1
            yield block[:left]
            left -= len(block[:left])


def generator():
    return "openssl aes-128-ctr fixed key" if shutil.which("openssl") else "sha256 counter"


class DataSet:
    """`root` is the folder a seeder is pointed at; `name` the torrent's name inside it."""

    def __init__(self, cache, name, kind, size=0, files=0, file_size=0):
        self.name = name
        self.kind = kind
        self.root = os.path.join(cache, "data", f"{name}-{kind}-{size or files * file_size}")
        self.path = os.path.join(self.root, name)
        self.size = size if kind == "file" else files * file_size
        self.files = files
        self.file_size = file_size

    def ensure(self):
        marker = os.path.join(self.root, ".complete")
        if os.path.exists(marker):
            return self
        if os.path.exists(self.root):
            shutil.rmtree(self.root)
        os.makedirs(self.root)
        if self.kind == "file":
            with open(self.path, "wb") as f:
                for chunk in stream(self.size, self.name):
                    f.write(chunk)
        else:
            data = b"".join(stream(self.files * self.file_size, self.name))
            for i in range(self.files):
                rel = tree_path(i)
                full = os.path.join(self.path, rel)
                os.makedirs(os.path.dirname(full), exist_ok=True)
                with open(full, "wb") as f:
                    f.write(data[i * self.file_size:(i + 1) * self.file_size])
        open(marker, "w").close()
        return self

    def file_paths(self):
        if self.kind == "file":
            return [self.path]
        return [os.path.join(self.path, tree_path(i)) for i in range(self.files)]


def tree_path(i):
    """A deep folder tree: 6 levels, 10-way at the top, files spread over 100 leaves."""
    return os.path.join(f"a{i % 10}", f"b{(i // 10) % 10}", "c", "deeper", "still",
                        f"leaf{i // 100}", f"f{i:04d}.bin")


def warm(paths):
    """Read files once so the seeder serves from the page cache."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 22):
                pass


def cached_fraction(paths):
    """Fraction of the files' pages in the page cache (fincore), or None if unknown."""
    if not shutil.which("fincore"):
        return None
    total = resident = 0
    for i in range(0, len(paths), 200):
        out = subprocess.run(["fincore", "-b", "-n", "-r", "-o", "RES,SIZE"] + paths[i:i + 200],
                             capture_output=True, text=True)
        for line in out.stdout.split("\n"):
            parts = line.split()
            if len(parts) == 2:
                resident += int(parts[0])
                total += int(parts[1])
    return round(resident / total, 3) if total else None


def same_content(a_paths, b_paths):
    """True when every file in A equals its counterpart in B."""
    for a, b in zip(a_paths, b_paths):
        if not os.path.exists(b) or os.path.getsize(a) != os.path.getsize(b):
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                x = fa.read(1 << 22)
                y = fb.read(1 << 22)
                if x != y:
                    return False
                if not x:
                    break
    return True
