"""Decoding image files once: integrity checks, resizing, and an on-disk cache of the results.

Decoding and resizing a 2124x2056 fundus JPEG costs tens of milliseconds; doing it 400 times every
epoch (the course's loop) makes input, not the network, the bottleneck. Each file is decoded once
per image size and kept as a small .npy file whose name hashes the file's bytes (SHA-256), so an
edited or replaced image is decoded again and nothing stale is read, even when the new file has the
old one's size and modification time (a copy with `cp -p`, a restored backup). Hashing a file costs
reading it, which is far cheaper than decoding it (docs/performance.md); the same digest is the
image's part of the run's data fingerprint (runner/store/fingerprint.py).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np

from runner.store.runfiles import atomic_write

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
CACHE_VERSION = "2"  # 2: entries keyed by the file's content, not its path, size and mtime


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def image_files(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted; .DS_Store, Thumbs.db and the like are ignored."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def decode(path: Path) -> tuple[np.ndarray | None, str | None]:
    """(RGB uint8 array, None) or (None, what is wrong with the file)."""
    raw, problem = read_file(path)
    return (None, problem) if problem else decode_bytes(raw, path)


def read_file(path: Path) -> tuple[bytes, str | None]:
    try:
        return path.read_bytes(), None
    except OSError as err:
        return b"", f"{path}: cannot be read ({err.strerror})"


def content_digest(raw: bytes) -> str:
    """SHA-256 of a file's bytes: what the cache and the data fingerprint know an image by."""
    return hashlib.sha256(raw).hexdigest()


def decode_bytes(raw: bytes, path: Path) -> tuple[np.ndarray | None, str | None]:
    """decode() of bytes already read from `path` (named in the problem)."""
    if not raw:
        return None, f"{path}: zero-byte file"
    if raw.startswith(b"\xff\xd8") and not raw.rstrip(b"\0").endswith(b"\xff\xd9") and jpeg_is_truncated(raw):
        # OpenCV decodes a truncated JPEG without complaint, filling the rest with grey.
        return None, f"{path}: truncated JPEG (its image data ends before the picture does)"
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None, f"{path}: not a readable image"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), None


def jpeg_is_truncated(raw: bytes) -> bool:
    """Whether a JPEG's picture data stops short. Judged by decoding it with Pillow, which (unlike
    OpenCV) fails on missing data; bytes after the end-of-image marker, as some cameras and editors
    write, are not a truncation."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
        return False
    except OSError:
        return True
    except Exception:  # not readable at all: OpenCV's decode says so
        return False


def resize(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size and image.shape[1] == size:
        return image
    # INTER_AREA averages when shrinking (no aliasing); linear when enlarging.
    shrinking = image.shape[0] > size or image.shape[1] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _cache_path(cache_dir: Path, content: str, size: int) -> Path:
    digest = hashlib.sha1(f"{CACHE_VERSION}|{content}|{size}".encode()).hexdigest()
    return cache_dir / digest[:2] / f"{digest}.npy"


def decoded_images_problem(count: int, image_size: int) -> str | None:
    need = count * image_size * image_size * 3
    have = available_memory()
    if have and need > 0.8 * have:
        return (f"image_size = {image_size} needs {need / 2 ** 30:.1f} GiB to hold the {count} decoded images in "
                f"memory, and this machine has {have / 2 ** 30:.1f} GiB available; use a smaller image_size")
    return None


def available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def load_resized(paths: list[Path], size: int, cache_dir: Path | None) -> tuple[np.ndarray, list[str], list[str]]:
    """All `paths` as one (N, size, size, 3) uint8 array, the problems of the files that failed, and
    each file's content digest: of the very bytes decoded, or whose decoded copy the cache served."""
    problem = decoded_images_problem(len(paths), size)
    if problem:
        return np.zeros((0, size, size, 3), np.uint8), [problem], []
    out = np.zeros((len(paths), size, size, 3), np.uint8)
    problems, digests = [], []
    for i, path in enumerate(paths):
        raw, problem = read_file(path)
        if problem:
            problems.append(problem)
            continue
        digests.append(content_digest(raw))
        cached = _cache_path(cache_dir, digests[-1], size) if cache_dir is not None else None
        if cached is not None and cached.exists():
            try:
                out[i] = np.load(cached)
                continue
            except (OSError, ValueError):  # a damaged cache entry is rebuilt
                pass
        image, problem = decode_bytes(raw, path)
        if problem:
            problems.append(problem)
            continue
        out[i] = resize(image, size)
        if cached is not None:
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(cached, lambda f, image=out[i]: np.save(f, image), durable=False)
            except OSError:
                pass  # a read-only or full cache only costs speed
    return out, problems, digests
