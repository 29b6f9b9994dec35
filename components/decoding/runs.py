"""The decoding page's runs, in the app or on the sidebar's server: the columns grow side by side, token by token."""

from __future__ import annotations

from backends import decoding as dec
from backends.decoding.metrics import metrics
from backends.serving import RemoteError
from components import engine
from components.decoding.charts import probability_chips


def show_token(event, steps: list, out) -> bool:
    """A column's new token (in-app or from the server): add it and redraw the column's chips."""
    if event.token is None:
        return False
    steps.append(event.token)
    out.markdown(probability_chips(steps), unsafe_allow_html=True)
    return True


def run_columns(loaded, prompt_ids, active: list[dict], outs: dict, results: dict) -> None:
    """All columns take turns one token at a time, so they grow side by side as they are generated."""
    steps = {c["id"]: [] for c in active}
    events = dec.stream_columns(loaded, prompt_ids, [c["config"] for c in active])
    for event in events:
        column = active[event.column]
        cid = column["id"]
        if not show_token(event, steps[cid], outs[cid]) and event.beam_step is not None and event.beam_step.kept:
            outs[cid].markdown(loaded.tokenizer.decode(event.beam_step.kept[0].ids, skip_special_tokens=True) + " …")
        if not event.done:
            continue
        beam = event.result if column["config"].strategy == "beam" else None
        ids = beam.best_ids if beam is not None else [step.token_id for step in steps[cid]]
        results[cid] = {
            "config": column["config"],
            "steps": steps[cid],
            "ids": ids,
            "beam": beam,
            "seconds": event.elapsed_s,
            "text": loaded.tokenizer.decode(ids, skip_special_tokens=True),
            "metrics": metrics(loaded, prompt_ids, ids, event.elapsed_s) if ids else None,
        }


def run_remote_columns(model_id: str, prompt: str, chat: bool, active: list[dict], outs: dict, results: dict) -> dict:
    """The same side-by-side run on the sidebar's server: one stream per column, read in turns.

    Returns {column id: the server's error message} for columns that failed (their old result is dropped)."""
    failed, steps = {}, {c["id"]: [] for c in active}
    events = dec.remote_columns(
        engine.make_engine(model_id),
        prompt,
        [c["config"] for c in active],
        chat=chat,
        extensions=engine.extensions_on(),
        catch=(RemoteError,),
    )
    for event in events:
        column = active[event.column]
        cid = column["id"]
        show_token(event, steps[cid], outs[cid])
        if event.error is not None:
            failed[cid] = str(event.error)
            results.pop(cid, None)
        elif event.done:
            results[cid] = {
                "config": column["config"],
                "steps": steps[cid],
                "ids": [],
                "beam": None,
                "seconds": event.elapsed_s,
                "text": "".join(s.piece for s in steps[cid]),
                "metrics": dec.remote_metrics(steps[cid], event.elapsed_s) if steps[cid] else None,
                "remote": model_id,
            }
    return failed
