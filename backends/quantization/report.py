"""A run as JSON, and back (to overlay earlier runs).

Per variant, optimum-benchmark's report names where it has one (load/prefill/decode with
latency and throughput, memory with max_ram), plus the quality fields it lacks, and what the
baseline's weights are (`baseline`: "fp32 copy of the shipped Q4_1 weights" for the embedded SmolLM2).
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict

import torch

from backends.quantization.run import BenchReport, VariantResult

FORMAT = "llm-playground/quantization-benchmark"
VERSION = 1
MAX_BYTES = 5 * 2**20


def _throughput(value, p90, unit="tokens/s"):
    return None if value is None else {"unit": unit, "value": value, "p90": p90}


def row_json(r: VariantResult) -> dict:
    def mb(b):
        return None if b is None else b / 1e6

    return {
        "name": r.key,
        "label": r.label,
        "family": r.family,
        "bits": r.bits,
        "status": r.status,
        "error": r.error,
        "note": r.note,
        "kv_cache": r.kv_cache,
        "seconds": r.seconds,
        "load": {"latency": {"unit": "s", "values": [r.load_s] if r.load_s is not None else []}},
        "quantize": {"latency": {"unit": "s", "values": [r.quantize_s] if r.quantize_s is not None else []}},
        "prefill": {"throughput": _throughput(r.prefill_tps, r.prefill_tps_p90)},
        "decode": {"throughput": _throughput(r.decode_tps, r.decode_tps_p90), "bound": _throughput(r.bound_tps, None)},
        "memory": {
            "unit": "MB",
            "max_ram": mb(r.peak_rss_bytes),
            "weights": mb(r.mem_bytes),
            "decode_read": mb(r.decode_bytes),
            "disk": mb(r.disk_bytes),
        },
        "quality": {
            "perplexity": r.perplexity,
            "nll": r.nll,
            "tokens": r.ppl_tokens,
            "kld": r.kld,
            "kld_tokens": r.kld_tokens,
            "top1": r.top1,
            "weight_rel_rmse": r.weight_error,
            "nll_delta_se": r.nll_delta_se,
            "nll_delta_windows": r.nll_delta_windows,
        },
        "generate": {"continuation": r.continuation},
    }


def to_json(report: BenchReport) -> str:
    return json.dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "model": report.model,
            "device": report.device,
            "baseline": report.baseline.text,
            "baseline_origin": report.baseline.to_dict(),
            "fitted": report.fitted,
            "config": {
                **asdict(report.config),
                "variants": list(report.config.variants),
                "keep": list(report.config.keep),
            },
            "environment": {
                "torch": torch.__version__,
                "platform": platform.platform(),
                "processor": platform.processor(),
                "threads": report.threads,
                "copy_bandwidth_gb_s": report.bandwidth / 1e9,
            },
            "seconds": report.seconds,
            "stopped": report.stopped,
            "benchmarks": [row_json(r) for r in report.rows],
        },
        indent=2,
    )


class ReportError(ValueError):
    """An uploaded report that is not one of ours; the message says what is wrong."""


def _get(d: dict, *path):
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def _num(value, where: str):
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise ReportError(f"{where} = {value!r}: expected a number.")


def from_json(data: bytes | str, name: str = "report") -> dict:
    """{"model", "device", "baseline", "rows": [VariantResult]} from a report this page exported
    (an older report without a baseline says "fp32")."""
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            raise ReportError(
                f"{name!r} is {len(data) / 2**20:.1f} MB; a report is at most {MAX_BYTES / 2**20:.0f} MB."
            )
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ReportError(f"{name!r} is not UTF-8 text.") from None
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{name!r} is not valid JSON: {exc}.") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ReportError(f"{name!r} is not a quantization benchmark report (format {found!r}, expected {FORMAT!r}).")
    rows = []
    for i, b in enumerate(doc.get("benchmarks") or []):
        if not isinstance(b, dict) or not isinstance(b.get("name"), str):
            raise ReportError(f"{name!r}: benchmark #{i + 1} has no name.")
        rows.append(_row(b))
    if not rows:
        raise ReportError(f"{name!r} holds no benchmark rows.")
    return {
        "model": str(doc.get("model", "")),
        "device": str(doc.get("device", "")),
        "baseline": str(doc.get("baseline", "fp32")),
        "rows": rows,
        "seconds": doc.get("seconds"),
    }


def _row(b: dict) -> VariantResult:
    w = b["name"]

    def mb(v, f):
        return None if v is None else int(_num(v, f"{w}.memory.{f}") * 1e6)

    def latency(k):
        return (_get(b, k, "latency", "values") or [None])[0]

    return VariantResult(
        key=b["name"],
        label=str(b.get("label", b["name"])),
        family=str(b.get("family", "")),
        bits=_num(b.get("bits", 0), f"{w}.bits"),
        status=str(b.get("status", "ok")),
        error=str(b.get("error", "")),
        note=str(b.get("note", "")),
        kv_cache=bool(b.get("kv_cache", True)),
        seconds=_num(b.get("seconds", 0), w),
        load_s=_num(latency("load"), f"{w}.load"),
        quantize_s=_num(latency("quantize"), f"{w}.quantize"),
        prefill_tps=_num(_get(b, "prefill", "throughput", "value"), f"{w}.prefill"),
        prefill_tps_p90=_num(_get(b, "prefill", "throughput", "p90"), f"{w}.prefill"),
        decode_tps=_num(_get(b, "decode", "throughput", "value"), f"{w}.decode"),
        decode_tps_p90=_num(_get(b, "decode", "throughput", "p90"), f"{w}.decode"),
        bound_tps=_num(_get(b, "decode", "bound", "value"), f"{w}.decode.bound"),
        peak_rss_bytes=mb(_get(b, "memory", "max_ram"), "max_ram"),
        mem_bytes=mb(_get(b, "memory", "weights"), "weights"),
        decode_bytes=mb(_get(b, "memory", "decode_read"), "decode_read"),
        disk_bytes=mb(_get(b, "memory", "disk"), "disk"),
        perplexity=_num(_get(b, "quality", "perplexity"), f"{w}.perplexity"),
        nll=_num(_get(b, "quality", "nll"), f"{w}.nll"),
        ppl_tokens=_num(_get(b, "quality", "tokens"), w),
        kld=_num(_get(b, "quality", "kld"), f"{w}.kld"),
        kld_tokens=_num(_get(b, "quality", "kld_tokens"), w),
        top1=_num(_get(b, "quality", "top1"), f"{w}.top1"),
        weight_error=_num(_get(b, "quality", "weight_rel_rmse"), f"{w}.weight_rel_rmse"),
        nll_delta_se=_num(_get(b, "quality", "nll_delta_se"), f"{w}.nll_delta_se"),
        nll_delta_windows=_num(_get(b, "quality", "nll_delta_windows"), f"{w}.nll_delta_windows"),
        continuation=str(_get(b, "generate", "continuation") or ""),
    )
