"""Opening images users give us, safely: one RGB picture or a message that quotes what was wrong.

- The size is read from the header and checked *before* any pixel is decoded, so a
  decompression bomb (a tiny PNG claiming 100,000 x 100,000 pixels) costs nothing.
- Non-images, truncated files and unsupported formats raise `ImageError` naming the file.
- CMYK, 16-bit, grey, palette and alpha images become 8-bit RGB (transparent parts over white);
  animated images give their first frame; EXIF orientation is applied so photos stand upright.
- Zips: nested folders are fine; members with unsafe names (absolute, `..`), non-images and
  broken images are skipped and named, and the rest still load. Nothing is written to disk.
"""

from __future__ import annotations

import io
import posixpath
import warnings
import zipfile
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # 40 megapixels: a large phone photo is 12-50 MP; decoding is refused above
MAX_FILE_BYTES = 50 * 2**20
MAX_ZIP_MEMBERS = 2_000
MAX_ZIP_TOTAL_BYTES = 500 * 2**20  # uncompressed sum of the members we read
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")


class ImageError(ValueError):
    """A message meant for the user, quoting the file and what was wrong with it."""


@dataclass(frozen=True)
class LoadedImage:
    name: str
    image: Image.Image  # 8-bit RGB, upright
    notes: tuple[str, ...] = ()  # what was converted (CMYK -> RGB, first of 12 frames...)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


@dataclass
class ZipResult:
    images: list[LoadedImage] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (member name, why)


def _to_rgb(img: Image.Image, notes: list[str]) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "CMYK":
        notes.append("CMYK converted to RGB")
        return img.convert("RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        notes.append(f"{'16-bit' if mode.startswith('I;16') else mode + ' mode'} scaled to 8-bit")
        arr = np.asarray(img, dtype=np.float64)
        low, high = float(arr.min()), float(arr.max())
        scaled = (arr - low) / (high - low) * 255.0 if high > low else np.zeros_like(arr)
        return Image.fromarray(scaled.round().astype(np.uint8), "L").convert("RGB")
    if (mode == "P" and "transparency" in img.info) or mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        notes.append("transparent parts shown over white")
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(data: bytes, name: str = "image", max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Decode bytes into an upright 8-bit RGB image, or raise ImageError quoting `name`."""
    if not data:
        raise ImageError(f"{name!r} is empty (0 bytes).")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{name!r} is {len(data) / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))  # reads the header only
    except UnidentifiedImageError:
        raise ImageError(
            f"{name!r} is not an image this app can read (not JPEG, PNG, GIF, BMP, WebP or TIFF), "
            "whatever its name says."
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"{name!r} was refused before decoding (a decompression bomb, or simply too large): its header says {exc}"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{name!r} could not be opened: {exc}.") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError(f"{name!r} says it is {width} x {height} pixels.")
    if width * height > max_pixels:
        raise ImageError(
            f"{name!r} is {width} x {height} pixels ({width * height / 1e6:.0f} megapixels); images "
            f"above {max_pixels / 1e6:.0f} megapixels are refused before decoding (a decompression "
            "bomb, or simply too large): resize it first."
        )
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        img.seek(0)
        notes.append(f"first of {frames} frames")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
            upright = ImageOps.exif_transpose(img)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = "it is truncated or damaged" if "truncated" in str(exc) or "broken" in str(exc) else str(exc)
        raise ImageError(f"{name!r} could not be decoded: {reason}.") from None
    if upright is not img:
        orientation = img.getexif().get(0x0112)
        if orientation and orientation != 1:
            notes.append(f"rotated upright (EXIF orientation {orientation})")
    rgb = _to_rgb(upright, notes)
    return LoadedImage(name, rgb, tuple(notes))


def _unsafe_member(name: str) -> bool:
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        return True
    return ".." in posixpath.normpath(normalised).split("/") or ".." in normalised.split("/")


def load_zip(data: bytes, name: str = "archive.zip", max_pixels: int = MAX_PIXELS) -> ZipResult:
    """Every image inside a zip (nested folders included); everything else is skipped with a reason."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImageError(f"{name!r} is not a readable zip file: {exc}.") from None
    result = ZipResult()
    total = 0
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_ZIP_MEMBERS:
            raise ImageError(f"{name!r} holds {len(members)} files; the limit is {MAX_ZIP_MEMBERS}.")
        for member in members:
            label = member.filename
            base = posixpath.basename(label.replace("\\", "/"))
            if _unsafe_member(label):
                result.skipped.append((label, "unsafe path (absolute or with '..'): ignored"))
                continue
            if base.startswith(".") or label.startswith("__MACOSX/"):
                continue  # macOS resource forks and hidden files are not the user's pictures
            if not base.lower().endswith(IMAGE_SUFFIXES):
                result.skipped.append((label, "not an image file"))
                continue
            if member.file_size > MAX_FILE_BYTES or total + member.file_size > MAX_ZIP_TOTAL_BYTES:
                result.skipped.append((label, f"too large once unpacked ({member.file_size / 2**20:.0f} MB)"))
                continue
            try:
                blob = archive.read(member)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                result.skipped.append((label, f"could not be unpacked: {exc}"))
                continue
            total += len(blob)
            try:
                result.images.append(load_image(blob, label, max_pixels))
            except ImageError as exc:
                result.skipped.append((label, str(exc)))
    return result


def load_uploads(files: list[tuple[str, bytes]], max_pixels: int = MAX_PIXELS) -> ZipResult:
    """Images and zips of images, as (name, bytes); one bad file never stops the others."""
    result = ZipResult()
    for name, data in files:
        try:
            if name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04":
                inner = load_zip(data, name, max_pixels)
                result.images.extend(inner.images)
                result.skipped.extend((f"{name}/{m}", why) for m, why in inner.skipped)
            else:
                result.images.append(load_image(data, name, max_pixels))
        except ImageError as exc:
            result.skipped.append((name, str(exc)))
    return result


def to_array(image: Image.Image, size: int) -> np.ndarray:
    """Square resize to `size` (bilinear), as a float32 HxWx3 array in [0, 1]."""
    resized = image.resize((size, size), Image.BILINEAR)
    return np.asarray(resized, dtype=np.float32) / 255.0
