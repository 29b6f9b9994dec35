"""Read the figures a page sent, as a user's browser would receive them."""

import base64

import numpy as np
import plotly.io as pio


def figures(at) -> list:
    return [pio.from_json(chart.proto.spec) for chart in at.get("plotly_chart")]


def figure_titled(at, title: str):
    matches = [f for f in figures(at) if f.layout.title.text == title]
    assert matches, f"no figure titled {title!r}; got {[f.layout.title.text for f in figures(at)]}"
    return matches[0]


def values(array) -> np.ndarray:
    """Plotly 6+ sends numpy arrays as {'dtype', 'bdata', 'shape'}."""
    if isinstance(array, dict) and "bdata" in array:
        data = np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
        shape = [int(s) for s in str(array.get("shape", len(data))).split(",")]
        return data.reshape(shape)
    return np.asarray(array, dtype=float)


def texts(at) -> str:
    """All markdown and captions of a page run, one per line."""
    return "\n".join(str(e.value) for e in (*at.markdown, *at.caption))
