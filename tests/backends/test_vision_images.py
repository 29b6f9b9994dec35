"""Bad and unusual image input: every case of the issue's list, built here from real encoders."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from backends.vision import ImageError, load_image, load_uploads, load_zip


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _photo(w=64, h=48) -> Image.Image:
    yy, xx = np.mgrid[0:h, 0:w]
    return Image.fromarray(np.stack([xx * 4 % 256, yy * 5 % 256, (xx + yy) % 256], -1).astype(np.uint8), "RGB")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width=100_000, height=100_000) -> bytes:
    """A valid PNG header claiming 10 gigapixels, with a tiny compressed body (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + _png_chunk(b"IEND", b"")
    )


def test_a_text_file_renamed_to_jpg_is_named_as_not_an_image():
    with pytest.raises(ImageError, match=r"'notes\.jpg' is not an image"):
        load_image(b"Dear diary, today I renamed a text file.", "notes.jpg")
    with pytest.raises(ImageError, match="empty"):
        load_image(b"", "empty.png")


def test_a_truncated_jpeg_is_refused_with_its_name():
    data = _encode(_photo(256, 256), "JPEG", quality=90)
    with pytest.raises(ImageError, match=r"'cut\.jpg' could not be decoded: it is truncated"):
        load_image(data[: len(data) // 2], "cut.jpg")


def test_a_decompression_bomb_is_refused_from_its_header_before_decoding():
    bomb = png_bomb()
    assert len(bomb) < 200
    with pytest.raises(ImageError, match=r"'bomb\.png' was refused before decoding.*10000000000 pixels"):
        load_image(bomb, "bomb.png")
    with pytest.raises(ImageError, match="above 1 megapixels"):  # a lower limit applies the same way
        load_image(_encode(_photo(1100, 1000), "JPEG"), "big.jpg", max_pixels=1_000_000)


def test_cmyk_jpeg_becomes_rgb_with_the_same_colours():
    data = _encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95)  # pure red in CMYK
    loaded = load_image(data, "cmyk.jpg")
    assert loaded.image.mode == "RGB" and "CMYK converted to RGB" in loaded.notes
    r, g, b = np.asarray(loaded.image).reshape(-1, 3).mean(0)
    assert r > 200 and g < 60 and b < 60


def test_sixteen_bit_png_is_scaled_to_eight_bits():
    ramp = (np.arange(64 * 16, dtype=np.uint16).reshape(16, 64) * 60).astype(np.uint16)
    data = _encode(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    loaded = load_image(data, "deep.png")
    pixels = np.asarray(loaded.image)
    assert loaded.image.mode == "RGB" and pixels.min() == 0 and pixels.max() == 255
    assert any("8-bit" in note for note in loaded.notes)


def test_palette_png_with_transparency_is_composited_over_white():
    img = Image.new("P", (20, 20), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.paste(1, (0, 0, 10, 20))
    data = _encode(img, "PNG", transparency=0)  # palette entry 0 (red) is fully transparent
    loaded = load_image(data, "palette.png")
    pixels = np.asarray(loaded.image)
    assert tuple(pixels[5, 2]) == (0, 0, 255) and tuple(pixels[5, 15]) == (255, 255, 255)
    rgba = Image.new("RGBA", (4, 4), (0, 128, 0, 0))
    assert tuple(np.asarray(load_image(_encode(rgba, "PNG"), "a.png").image)[0, 0]) == (255, 255, 255)


def test_an_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    loaded = load_image(buf.getvalue(), "anim.gif")
    assert "first of 3 frames" in loaded.notes
    r, g, b = np.asarray(loaded.image)[8, 8]
    assert r > 200 and g < 50 and b < 50


def test_an_exif_rotated_photo_stands_upright():
    wide = Image.new("RGB", (60, 20), (0, 0, 0))
    wide.paste((255, 255, 255), (0, 0, 10, 20))  # white band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    loaded = load_image(_encode(wide, "JPEG", exif=exif.tobytes(), quality=95), "phone.jpg")
    assert loaded.size == (20, 60)
    assert np.asarray(loaded.image)[:8, :, :].mean() > 200  # the band is now on top
    assert any("EXIF orientation 6" in note for note in loaded.notes)


def test_a_zip_with_nested_folders_traversal_names_and_junk_keeps_the_good_images():
    good = _encode(_photo(), "PNG")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("photos/", "")
        zf.writestr("photos/2024/cat.png", good)
        zf.writestr("top.jpg", _encode(_photo(), "JPEG"))
        zf.writestr("../../etc/evil.png", good)
        zf.writestr("/abs/evil2.png", good)
        zf.writestr("readme.txt", "hello")
        zf.writestr("photos/fake.jpg", b"not a jpeg")
        zf.writestr("photos/bomb.png", png_bomb())
        zf.writestr("__MACOSX/photos/._cat.png", b"junk")
    result = load_zip(buf.getvalue(), "holiday.zip")
    assert sorted(i.name for i in result.images) == ["photos/2024/cat.png", "top.jpg"]
    reasons = dict(result.skipped)
    assert "unsafe path" in reasons["../../etc/evil.png"] and "unsafe path" in reasons["/abs/evil2.png"]
    assert reasons["readme.txt"] == "not an image file"
    assert "not an image" in reasons["photos/fake.jpg"]
    assert "refused before decoding" in reasons["photos/bomb.png"]
    assert not any("MACOSX" in name for name in reasons)


def test_uploads_mix_images_zips_and_broken_files_and_name_each_problem():
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("a/b.png", _encode(_photo(), "PNG"))
    result = load_uploads(
        [
            ("one.png", _encode(_photo(), "PNG")),
            ("set.zip", inner.getvalue()),
            ("bad.zip", b"PK\x03\x04garbage"),
            ("x.jpg", b"nope"),
        ]
    )
    assert [i.name for i in result.images] == ["one.png", "a/b.png"]
    assert [name for name, _ in result.skipped] == ["bad.zip", "x.jpg"]
    assert "not a readable zip" in result.skipped[0][1]
