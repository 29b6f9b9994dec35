"""The Trust page in AppTest: the shipped question set counted on arrival (against the JSON file read
here), bad questions worded, the guardrail tab's measured false positives equal to a count made here,
and the red-team tab's defaults and command line."""

import json
from collections import Counter

import pytest

from backends import trust
from backends.core.paths import ASSETS
from components.i18n import strings
from components.page_registry import PAGES

PAGE = next(p for p in PAGES if p.key == "trust")
EN = strings("en")
D = "trust.detect."

BROWSER_MUST_SHOW = "text=" + EN[D + "shipped.total"]


def _kinds() -> Counter:
    raw = json.loads((ASSETS / "datasets" / "trust" / "questions.json").read_text(encoding="utf-8"))
    return Counter(q["kind"] for q in raw["questions"])


def check_page(at):
    """What the page must show when a user arrives (tests/pages/test_pages.py runs it in AppTest)."""
    lang = strings(at.session_state["app.lang"]) if "app.lang" in at.session_state else EN
    metrics = {m.label: m.value for m in at.metric}
    kinds = _kinds()
    assert metrics[lang[D + "shipped.total"]] == str(sum(kinds.values()))
    for kind in ("common", "specific", "invented"):
        assert metrics[lang[D + "kind." + kind]] == str(kinds[kind])


@pytest.fixture
def page(open_page):
    return open_page(PAGE)


def _open_tab(at, key: str):
    at.session_state["trust.tab"] = EN["trust.tab." + key]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize(
    ("text", "code"),
    [("   ", "empty"), ("why? " * 500, "too_long"), ("\x00\x01\x02\x03 binary \x04\x05\x06\x07", "binary")],
)
def test_a_bad_question_gets_a_clear_message(page, text, code):
    at = page
    at.radio(key=D + "one.source").set_value("own").run()
    at.text_area(key=D + "one.own").set_value(text).run()
    at.button(key=D + "one.run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    errors = " ".join(e.value for e in at.error)
    expected = EN["trust.question." + code].split("{")[0]
    assert expected in errors


def test_the_guard_tab_shows_the_benign_false_positives_counted_here(page):
    at = _open_tab(page, "guard")
    benign = trust.guard_set("benign")
    flagged = [b for b in benign if trust.check(b.text, stage="input").blocked]
    metrics = {m.label: m.value for m in at.metric}
    fpr = next(v for k, v in metrics.items() if k == EN["trust.guard.fpr"])
    assert fpr == f"{len(flagged) / len(benign):.1%}"
    assert len(flagged) / len(benign) <= 0.1


def test_the_red_team_tab_shows_its_probes_and_the_command_line(page):
    at = _open_tab(page, "redteam")
    assert list(at.multiselect(key="trust.redteam.probes").value) == list(trust.REDTEAM_DEFAULT_PROBES)
    code = " ".join(c.value for c in at.code)
    assert ",".join("probes." + p for p in trust.REDTEAM_DEFAULT_PROBES) in code


def test_the_red_team_tab_attacks_a_remote_engine_on_its_v1_route_only():
    """The sidebar's remote engine as the target: our own server stands in for a remote one (a real HTTP
    server on a free port); only its /v1 route is attacked, and an address without /v1 is refused."""
    from backends.core.jobs import DONE, JobRunner
    from backends.serving.app import ServerSettings
    from backends.serving.local import ServerThread
    from components.trust.redteam import remote_job

    refused = remote_job(None, ["encoding.InjectBase64"], 1, "http://127.0.0.1:9/api", None, "smollm2-135m-instruct")
    assert refused["error"].code == "remote_url"
    with ServerThread(ServerSettings(gradio=False, max_tokens=8)) as url:
        job = JobRunner().submit(
            "remote", remote_job, ["encoding.InjectBase64"], 1, url + "/v1", None, "smollm2-135m-instruct"
        )
        assert job.wait(150) and job.status == DONE, job.error
    report = job.result["report"]
    assert list(report.runs) == ["plain"] and job.result["remote"]
    row = report.runs["plain"].row("encoding.InjectBase64")
    assert row.attempts == 1 and 0 <= row.failures <= 1


def test_one_question_on_the_sidebar_remote_engine(open_page):
    """The remote engine switched on in the sidebar (our own server on a free port as the remote): the
    one-question check runs there and the page says what the entropy is and where the answer came from."""
    import time

    from backends.core.jobs import shared_runner
    from backends.serving.app import ServerSettings
    from backends.serving.local import ServerThread

    with ServerThread(ServerSettings(gradio=False)) as url:
        at = open_page(PAGE, **{"engine.remote": True, "engine.base_url": url + "/v1"})
        at.radio(key=D + "one.where").set_value("remote").run()
        at.text_input(key=D + "one.remote_model").set_value("smollm2-135m-instruct").run()
        at.select_slider(key=D + "one.n").set_value(2).run()
        at.button(key=D + "one.run").click().run()
        job = shared_runner().get(at.session_state[D + "one.job"])
        deadline = time.time() + 240
        while not job.done and time.time() < deadline:
            time.sleep(1)
        assert job.status == "done", job.error
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    infos = " ".join(i.value for i in at.info)
    assert url + "/v1" in infos
    assert "Paris" in " ".join(m.value for m in at.markdown)
