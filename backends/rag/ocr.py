"""Text out of images, offline: RapidOCR (PP-OCRv4 detection + recognition, Chinese and English).

rapidocr-onnxruntime (Apache-2.0) ships PaddleOCR's PP-OCRv4 ONNX models (Apache-2.0) inside
its wheel, so nothing is downloaded. One engine per process, built once under a lock; every
image is one turn of the shared compute scheduler ("ocr"), so a page being read waits its turn
like any other model work. Lines come back in reading order (top to bottom, then left to right).
"""

from __future__ import annotations

import importlib
import threading
import time
from dataclasses import dataclass

import numpy as np

from backends.core.scheduler import shared_scheduler

MAX_SIDE = 2400  # larger scans are scaled down first (detection works on ~736-2000 px anyway)
MIN_SCORE = 0.5

_ENGINE = None
_ENGINE_LOCK = threading.Lock()


class OcrError(RuntimeError):
    """OCR could not run (the package is missing, or the image cannot be read)."""


@dataclass(frozen=True)
class OcrLine:
    text: str
    score: float
    box: tuple[float, float, float, float]  # left, top, right, bottom in image pixels


@dataclass(frozen=True)
class OcrResult:
    lines: list[OcrLine]
    seconds: float

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


def ocr_available() -> bool:
    try:
        importlib.import_module("rapidocr_onnxruntime")
    except ImportError:
        return False
    return True


def engine():
    """The process-wide RapidOCR engine (models from the wheel; ONNX Runtime on the CPU)."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:
                raise OcrError(
                    "OCR needs the rapidocr-onnxruntime package: pip install 'rapidocr-onnxruntime==1.4.4'."
                ) from exc
            _ENGINE = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
        return _ENGINE


def _rgb_array(image) -> np.ndarray:
    from PIL import Image

    if isinstance(image, (bytes, bytearray)):
        import io

        image = Image.open(io.BytesIO(bytes(image)))
    if isinstance(image, Image.Image):
        image.load()
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGBA") if "A" in image.getbands() or image.mode == "P" else image.convert("RGB")
            if image.mode == "RGBA":  # transparent areas become white paper, not black
                paper = Image.new("RGB", image.size, "white")
                paper.paste(image, mask=image.getchannel("A"))
                image = paper
        if image.mode == "L":
            image = image.convert("RGB")
        if max(image.size) > MAX_SIDE:
            scale = MAX_SIDE / max(image.size)
            image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
        return np.asarray(image)[:, :, ::-1].copy()  # RapidOCR reads OpenCV's BGR order
    raise OcrError(f"Cannot OCR a {type(image).__name__}: pass a PIL image or image file bytes.")


def _reading_order(lines: list[OcrLine]) -> list[OcrLine]:
    """Rows first (boxes whose vertical centres are within half a line height), then left to right."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda item: (item.box[1] + item.box[3]) / 2):
        centre, height = (line.box[1] + line.box[3]) / 2, line.box[3] - line.box[1]
        if rows:
            last = rows[-1][-1]
            if abs(centre - (last.box[1] + last.box[3]) / 2) < 0.5 * max(height, last.box[3] - last.box[1]):
                rows[-1].append(line)
                continue
        rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda item: item.box[0])]


def ocr_image(image, min_score: float = MIN_SCORE) -> OcrResult:
    """The text lines of one image (PIL image or encoded bytes), in reading order."""
    try:
        array = _rgb_array(image)
    except OSError as exc:
        raise OcrError(f"The image cannot be read ({exc}).") from exc
    started = time.perf_counter()
    with shared_scheduler().turn("ocr"):
        found, _ = engine()(array)
    lines = []
    for box, text, score in found or []:
        xs, ys = [p[0] for p in box], [p[1] for p in box]
        if float(score) >= min_score and text.strip():
            lines.append(OcrLine(text.strip(), float(score), (min(xs), min(ys), max(xs), max(ys))))
    return OcrResult(_reading_order(lines), time.perf_counter() - started)
