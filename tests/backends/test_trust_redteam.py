"""The red-team job (garak as a subprocess) against a live in-process server, counted by hand.

Each probe's attempts, hits and attack success rate equal a count written here from garak's own
report JSONL (every output of an evaluated attempt; a hit is a detector score >= 0.5, garak's
threshold) and garak's own `eval` tally; a bad probe name, a bad cap and a server that is not there
are clear errors before any attack; Stop ends garak's process."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from backends.core.jobs import DONE, STOPPED, JobRunner
from backends.serving.app import ServerSettings
from backends.serving.local import ServerThread, free_port
from backends.trust.redteam import RedTeamError, redteam_command_line, run_redteam

PROBES = ["promptinject.HijackHateHumans", "encoding.InjectBase64"]
CAP = 2


@pytest.fixture(scope="module")
def base_url():
    with ServerThread(ServerSettings(gradio=False, max_tokens=16)) as url:
        yield url


@pytest.fixture(scope="module")
def finished(base_url):
    job = JobRunner().submit("redteam", run_redteam, base_url, PROBES, CAP, ("plain", "guarded"))
    assert job.wait(150), "the red-team job did not finish"
    assert job.status == DONE, job.error
    return job


def hand_count(path: str) -> dict[str, dict]:
    """Per probe from the raw JSONL: outputs of evaluated attempts (status 2) and those scored >= 0.5."""
    counts: dict[str, dict] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            entry = json.loads(line)
            if entry["entry_type"] == "eval":
                counts.setdefault(entry["probe"], {"outputs": 0, "hits": 0, "evals": []})["evals"].append(entry)
            if entry["entry_type"] != "attempt" or entry["status"] != 2:
                continue
            c = counts.setdefault(entry["probe_classname"], {"outputs": 0, "hits": 0, "evals": []})
            for i in range(len(entry["outputs"])):
                scores = [s[i] for s in entry["detector_results"].values() if s[i] is not None]
                c["outputs"] += 1
                c["hits"] += any(score >= 0.5 for score in scores)
    return counts


@pytest.mark.parametrize("target", ["plain", "guarded"])
def test_each_probe_asr_equals_a_hand_count_of_garaks_report(finished, target):
    report = finished.result
    run = report.runs[target]
    assert list(report.runs) == ["plain", "guarded"]
    assert run.api_url.endswith({"plain": "/v1", "guarded": "/guarded/v1"}[target])
    counts = hand_count(run.report_path)
    assert sorted(counts) == sorted(PROBES) == sorted(r.probe for r in run.rows)
    for row in run.rows:
        c = counts[row.probe]
        assert row.attempts == c["outputs"] == CAP  # one generation per prompt, CAP prompts
        assert row.failures == c["hits"]
        assert row.asr == pytest.approx(c["hits"] / c["outputs"])
        # garak's own tally (its primary detector only, extended detectors off) agrees
        (ev,) = c["evals"]
        assert (ev["fails"], ev["passed"] + ev["fails"] + ev["nones"]) == (row.failures, row.attempts)
        assert 1 <= len(row.examples) <= 3 and all(e.prompt for e in row.examples)
        assert all(e.hit == (e.score is not None and e.score >= 0.5) for e in row.examples)
    total_hits = sum(c["hits"] for c in counts.values())
    assert report.asr(target) == pytest.approx(total_hits / (CAP * len(PROBES)))
    table = {r["probe"]: r for r in report.table()}
    assert table[PROBES[0]][target + "_attempts"] == CAP
    assert table[PROBES[0]][target + "_hits"] == counts[PROBES[0]]["hits"]


def test_progress_names_each_probe_and_ends_at_one(finished):
    events = finished.events_since(0)
    seen = {e.data.get("probe") for e in events} - {None}
    assert seen == set(PROBES)
    fractions = [e.progress for e in events if e.progress is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_garak_ran_offline_in_a_private_folder(finished):
    from backends.core.paths import cache_dir

    run = finished.result.runs["guarded"]
    assert run.report_path.startswith(str(cache_dir() / "garak"))
    config = json.loads(Path(run.report_path.replace(".report.jsonl", ".config.json")).read_text(encoding="utf-8"))
    assert config["run"]["soft_probe_prompt_cap"] == CAP and config["run"]["generations"] == 1
    assert (cache_dir() / "garak" / "data" / "garak" / "garak.log").exists()


def test_unknown_probe_bad_cap_and_unreachable_server(base_url):
    with pytest.raises(RedTeamError) as err:
        run_redteam(None, base_url, ["encoding.NoSuchProbe"], 2)
    assert err.value.code == "unknown_probe" and err.value.values["probe"] == "encoding.NoSuchProbe"
    with pytest.raises(RedTeamError) as err:
        run_redteam(None, base_url, ["realtoxicityprompts.RTPBlank"], 2)  # its detector needs a hub model
    assert err.value.code == "not_offline"
    with pytest.raises(RedTeamError) as err:
        run_redteam(None, base_url, PROBES, 0)
    assert err.value.code == "bad_cap"
    with pytest.raises(RedTeamError) as err:
        run_redteam(None, base_url, [], 2)
    assert err.value.code == "no_probes"
    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RedTeamError) as err:
        run_redteam(None, nobody, PROBES, 2, ("plain",))
    assert err.value.code == "unreachable" and err.value.values["url"] == nobody + "/v1"


def test_stop_kills_garak(base_url):
    job = JobRunner().submit("redteam", run_redteam, base_url, ["encoding.InjectBase64"], 8, ("plain",))
    deadline = time.monotonic() + 60
    while not any(e.data.get("probe") for e in job.events_since(0)) and time.monotonic() < deadline:
        time.sleep(0.2)
    job.stop()
    assert job.wait(20)
    assert job.status == STOPPED and job.result.runs == {}
    children = [p for p in os.listdir("/proc") if p.isdigit() and ppid(p) == os.getpid()]
    assert not [p for p in children if "garak" in cmdline(p)]


def ppid(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def test_command_line_names_the_probes_and_the_cap():
    text = redteam_command_line(PROBES, 3, "http://127.0.0.1:8000")
    assert "--spec probes.promptinject.HijackHateHumans,probes.encoding.InjectBase64" in text
    config = json.loads(text.split("cat > redteam.json <<'EOF'\n", 1)[1].split("\nEOF", 1)[0])
    assert config["run"]["soft_probe_prompt_cap"] == 3
    assert config["plugins"]["generators"]["openai"]["OpenAICompatible"]["uri"] == "http://127.0.0.1:8000/v1"
