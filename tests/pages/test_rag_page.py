"""The RAG page as a user meets it: the sample indexed on arrival, uploads, a cited answer, the glass box."""

import json
from pathlib import Path

import pytest

from backends.core.jobs import DONE, shared_runner
from backends.rag.citations import own_citations
from backends.rag.evaluate import citation_accuracy
from components.i18n import strings
from components.page_registry import PAGES
from tests.openai_server import ANSWER_PIECES, KEY
from tests.sample_pdfs import PDFS

from .plotly_helpers import figures, values

EN = strings("en")
RAG = next(p for p in PAGES if p.key == "rag")

# What a browser must see once the page has run (tests/e2e/test_browser.py): the reports table's row
# of the indexed sample. The table is drawn on a canvas; its cells are also in the DOM for screen
# readers, off-screen, so this one is waited for as attached, not visible. (Neither the collection's
# title line nor the chunk inspector: after a sidebar click from Home, Chromium sometimes shows the
# table without them; see docs/rag.md.)
BROWSER_MUST_SHOW = '[data-testid="stDataFrame"] [role="gridcell"]:has-text("how_language_models_work.pdf")'
BROWSER_MUST_SHOW_STATE = "attached"


def check_page(at):
    """What the page must show when a user arrives (tests/pages/test_pages.py runs it in AppTest)."""
    assert [tab.label for tab in at.tabs][:4] == [
        EN[f"rag.tab.{k}"] for k in ("documents", "chat", "retrieval", "evaluate")
    ]
    job = shared_runner().get(at.session_state["rag.index_job"])  # the sample is indexed on arrival
    assert job.wait(300) and job.error is None
    at.run()
    collection = at.session_state["rag.collection"]
    assert len(collection.chunks) > 5
    assert EN["rag.collection_title"].format(n=len(collection.chunks), docs=1) in texts(at)


SAMPLE_EVAL = Path(__file__).resolve().parents[2] / "assets" / "samples" / "sample_eval.jsonl"


def wait_for_index(at, timeout=300):
    job = shared_runner().get(at.session_state["rag.index_job"])
    assert job.wait(timeout), "indexing did not finish"
    assert job.status == DONE, job.error
    at.run()
    return at.session_state["rag.collection"]


def open_tab(at, key):
    at.session_state["rag.tab"] = EN[f"rag.tab.{key}"]
    at.run()
    return at


def texts(at) -> str:
    return "\n".join(str(e.value) for e in (*at.markdown, *at.caption, *at.subheader))


def first_question():
    item = json.loads(SAMPLE_EVAL.read_text(encoding="utf-8").splitlines()[0])
    return item["question"], set(item["pages"])


@pytest.fixture
def page(open_page):
    at = open_page(RAG)
    wait_for_index(at)
    return at


def test_the_sample_is_indexed_on_arrival_and_inspected_by_page(page):
    collection = page.session_state["rag.collection"]
    assert collection.reports[0].status == "ok" and collection.reports[0].pages >= 5
    title = EN["rag.collection_title"].format(n=len(collection.chunks), docs=1)
    assert title in texts(page)
    chunks = page.dataframe[1].value
    assert len(chunks) == len(collection.chunks) and set(chunks[EN["rag.col.page"]]) == {
        c.page for c in collection.chunks
    }


def test_uploads_are_indexed_and_bad_files_explained_without_losing_the_others(page):
    page.file_uploader(key="rag.uploads").set_value(
        [
            ("pdflatex-4-pages.pdf", (PDFS / "pdflatex-4-pages.pdf").read_bytes(), "application/pdf"),
            ("locked.pdf", (PDFS / "libreoffice-writer-password.pdf").read_bytes(), "application/pdf"),
            ("notes.pdf", b"just some text, not a PDF at all", "application/pdf"),
            ("blank.txt", b"  \n\n  ", "text/plain"),
        ]
    ).run()
    page.button(key="rag.index_button").click().run()
    collection = wait_for_index(page)
    status = {r.doc: r.status for r in collection.reports}
    assert status["pdflatex-4-pages.pdf"] == "ok" and status["locked.pdf"] == "needs_password"
    assert status["notes.pdf"] == "error" and status["blank.txt"] == "no_text"
    assert {c.page for c in collection.chunks if c.doc == "pdflatex-4-pages.pdf"} == {1, 2, 3, 4}
    warnings = "\n".join(w.value for w in page.warning)
    assert "locked.pdf" in warnings and "notes.pdf" in warnings and "blank.txt" in warnings
    # The password box appears for the locked file; with it, the file is indexed too.
    page.text_input(key="rag.pw.locked.pdf").input("openpassword").run()
    page.button(key="rag.index_button").click().run()
    collection = wait_for_index(page)
    assert {r.doc: r.status for r in collection.reports}["locked.pdf"] == "ok"
    assert any(c.doc == "locked.pdf" for c in collection.chunks)


def test_a_question_gets_an_answer_from_the_right_page_with_its_sources(page):
    # A question SmolLM2-135M answers from its passage (it gets many others wrong: see the evaluate tab's F1).
    question, pages = "What does LoRA freeze?", {5}
    open_tab(page, "chat")
    page.chat_input(key="rag.ask").set_value(question).run(timeout=300)
    assert not page.exception
    turn = page.session_state["rag.turns"][0]
    assert turn.answer.strip(), "the model answered"
    assert turn.hits[0].chunk.page in pages, "the best chunk comes from the expected page"
    assert turn.hits[0].chunk.text in turn.prompt, "the retrieved text is in the prompt the model saw"
    assert {c.hit.chunk.page for c in turn.citations} & pages, "a source on the expected page is cited"
    for citation in turn.citations:
        assert citation.hit in turn.hits
    shown = [e.label for e in page.expander]
    assert any(f"[1] {turn.hits[0].chunk.doc}, page {turn.hits[0].chunk.page}" in label for label in shown)
    # the extractive answer: a sentence of the sources, quoted with its citation and highlighted in its source
    found = turn.extractive
    assert found.hit.chunk.page in pages and found.sentence in turn.hits[found.number - 1].chunk.text.replace(
        "\n", " "
    )
    assert any(m.value == f"**{EN['rag.extractive']}** {found.span} [{found.number}]" for m in page.markdown)
    assert any(":orange-background[**" + found.sentence in m.value for m in page.markdown)
    # Citation forcing (on by default) began the answer with the extractive passage's [n]: the app wrote
    # it, so the answer draws it as a badge with a tooltip, and its source card says so.
    n = found.number
    assert turn.prefix == f"According to [{n}]," and turn.answer.startswith(turn.prefix)
    help_text = EN["rag.forced_help"].format(prefix=turn.prefix)
    drawn = f":orange-badge[🔧 According to \\[{n}\\],]" + turn.answer[len(turn.prefix) :]
    assert any(m.value == drawn and m.proto.help == help_text for m in page.markdown)
    own = [c.number for c in own_citations(turn.answer, turn.hits, turn.prefix)]
    first = turn.citations[0]
    assert first.number == n and first.forced == (n not in own)
    if first.forced:  # the model did not cite [n] itself
        assert any(label.startswith(f"🔧 [{n}] ") for label in shown)
        label = EN["rag.forced_badge"].format(n=n).replace("[", "\\[").replace("]", "\\]")
        badge = f":orange-badge[🔧 {label}]"  # st.badge escapes the brackets
        assert any(m.value == badge and m.proto.help == help_text for m in page.markdown)
    if not own:
        assert EN["rag.forced_only"] in texts(page)


def test_the_glass_box_lists_every_candidate_with_all_scores(page):
    question, pages = first_question()
    open_tab(page, "retrieval")
    page.text_input(key="rag.glass_q").input(question).run()
    frame = page.dataframe[0].value
    assert {"dense", "BM25", "RRF"} <= set(frame.columns)
    ranks = list(frame["BM25 #"]) + list(frame["dense #"])
    assert "None" not in map(str, ranks) and "–" in ranks, "a chunk one method did not rank shows a dash"
    assert frame.iloc[0][EN["rag.col.page"]] in pages
    assert frame[EN["rag.col.top_k"]].sum() == 4
    chart = next(f for f in figures(page) if f.layout.title.text == EN["rag.map.title"])
    assert len(chart.data) == 3 and len(values(chart.data[1].x)) == 4


def test_evaluation_reports_recall_and_mrr_per_method(page):
    open_tab(page, "evaluate")
    summary = page.dataframe[0].value
    assert list(summary["method"]) == [EN[f"rag.method.{m}"] for m in ("dense", "sparse", "hybrid")]
    assert (summary["recall@4"] >= 0.6).all() and (summary["MRR"] > 0.4).all()


def test_evaluated_answers_report_the_models_own_citations_beside_the_forced_ones(page):
    """One question with a reference answer, answered by SmolLM2 with citation forcing (the chat's
    setting): the page shows the share of answers cited on the right page as shown and by the model
    itself, both from the job's rows."""
    open_tab(page, "evaluate")
    page.radio(key="rag.eval_source").set_value("upload").run()
    page.file_uploader(key="rag.eval_file").set_value(
        ("one.csv", b"question,pages,answer\nWhat does LoRA freeze?,5,the pretrained weights\n", "text/csv")
    )
    page.run()
    page.button(key="rag.answer_button").click().run(timeout=120)
    job = shared_runner().get(page.session_state["rag.answer_job"])
    assert job.wait(300) and job.status == DONE, job.error
    page.run()
    [row] = job.result
    assert row["forced"] and row["answer"].startswith("According to [")
    assert row["cited_pages"][0] in row["expected_pages"] == [5]
    cited = citation_accuracy(job.result)
    assert cited["shown"] == 1.0 and cited["model"] == float(row["model_cited_pages"][:1] == [5])
    metrics = {m.label: (m.value, m.help) for m in page.metric}
    assert metrics[EN["rag.eval.cited_shown"]] == ("1.00", EN["rag.eval.cited_shown_help"])
    assert metrics[EN["rag.eval.cited_model"]] == (f"{cited['model']:.2f}", EN["rag.eval.cited_model_help"])


def test_two_sessions_never_see_each_others_documents(open_page):
    alice, bob = open_page(RAG), open_page(RAG)
    wait_for_index(alice)
    wait_for_index(bob)
    alice.file_uploader(key="rag.uploads").set_value(
        ("alice.txt", b"Alice's private note: the vault code is 4417.", "text/plain")
    ).run()
    alice.button(key="rag.index_button").click().run()
    wait_for_index(alice)
    assert any(c.doc == "alice.txt" for c in alice.session_state["rag.collection"].chunks)
    bob.run()
    assert not any(c.doc == "alice.txt" for c in bob.session_state["rag.collection"].chunks)
    assert "alice.txt" not in texts(bob)


def test_an_openai_compatible_server_answers_and_the_key_stays_hidden(page, server):
    """The sidebar's generation engine (one setting for every generation page) sends RAG answers too."""
    page.toggle(key="engine.remote").set_value(True).run()
    page.text_input(key="engine.base_url").input(server)
    page.text_input(key="rag.remote_model").input("tiny")
    page.text_input(key="engine.api_key").input("wrong-" + KEY).run()
    open_tab(page, "chat")
    page.chat_input(key="rag.ask").set_value("Who founded it?").run()
    error = "\n".join(e.value for e in page.error)
    assert "401" in error and KEY not in error
    assert not page.session_state["rag.turns"], "a failed request adds no turn"
    page.text_input(key="engine.api_key").input(KEY).run()
    page.chat_input(key="rag.ask").set_value("Who founded it?").run()
    turn = page.session_state["rag.turns"][0]
    assert turn.answer == "".join(ANSWER_PIECES).strip()
    assert [c.number for c in turn.citations] == [1]
    shown = "\n".join(str(e.value) for e in (*page.markdown, *page.code, *page.caption, *page.error))
    assert KEY not in shown


def test_bad_settings_and_a_malformed_evaluation_file_get_messages(page):
    page.number_input(key="rag.chunk_overlap_characters").set_value(600).run()
    assert any("must be smaller than the chunk size" in e.value for e in page.error)
    assert not [b for b in page.button if b.key == "rag.index_button"], "no index button while the settings are wrong"
    open_tab(page, "evaluate")
    page.radio(key="rag.eval_source").set_value("upload").run()
    page.file_uploader(key="rag.eval_file").set_value(
        ("mine.csv", b"question,pages\nWhat is LoRA?,five\n", "text/csv")
    )
    page.run()
    error = "\n".join(e.value for e in page.error)
    assert "mine.csv" in error and "five" in error
    page.file_uploader(key="rag.eval_file").set_value(
        ("mine.csv", b"question,pages\nWhat does LoRA freeze?,5\nWhat is perplexity?,8\n", "text/csv")
    )
    page.run()
    summary = page.dataframe[0].value
    assert list(summary["questions"]) == [2, 2, 2] and (summary["recall@4"] == 1.0).all()


def test_a_collection_is_saved_reopened_and_deleted(open_page, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMPG_CACHE_DIR", str(tmp_path))  # saved collections go to a folder of this test
    at = open_page(RAG)
    built = wait_for_index(at)
    at.text_input(key="rag.save_name").input("class notes").run()
    at.button(key="rag.save").click().run()
    assert any("FAISS index + JSON" in s.value for s in at.success)
    assert at.selectbox(key="rag.open_name").options == ["class notes"]
    at.selectbox(key="rag.open_name").select("class notes").run()
    at.button(key="rag.open").click().run()
    reopened = at.session_state["rag.collection"]
    assert reopened is not built and reopened.chunks == built.chunks
    at.selectbox(key="rag.open_name").select("class notes").run()
    at.button(key="rag.delete").click().run()
    assert at.selectbox(key="rag.open_name").options == []
    at.text_input(key="rag.save_name").input("../outside").run()
    at.button(key="rag.save").click().run()
    assert any("not allowed" in e.value for e in at.error)


def test_an_uploaded_image_is_read_by_ocr_and_marked_in_the_inspector(page):
    import io

    from tests.backends.test_rag_silent_loss import text_image

    buffer = io.BytesIO()
    text_image(["The vault opens at seven.", "Bring the blue key."], 900, 260, 36).save(buffer, "PNG")
    page.toggle(key="rag.use_sample").set_value(False).run()
    page.file_uploader(key="rag.uploads").set_value(("note.png", buffer.getvalue(), "image/png")).run()
    page.button(key="rag.index_button").click().run()
    collection = wait_for_index(page)
    assert [r.status for r in collection.reports] == ["ok"] and collection.chunks[0].kind == "ocr"
    assert "vault opens at seven" in collection.chunks[0].text
    inspector = page.dataframe[1].value
    assert list(inspector[EN["rag.col.kind"]]) == [EN["rag.kind.ocr"]]


ZH = strings("zh")


def test_chinese_ui_reports_ingest_in_chinese_names_the_file_once_and_says_the_models_read_english(open_page):
    from backends.rag.pdf_parts import pdf_page_count

    at = open_page(RAG, **{"app.lang": "zh"})
    collection = wait_for_index(at)
    report = collection.reports[0]
    message = at.dataframe[0].value[ZH["rag.col.message"]][0]
    assert message.startswith(ZH["rag.ingest.pdf_ok"].format(**report.values))
    assert ZH["rag.ingest.note.running_lines"].format(n=16) in message  # the sample's running header, counted
    assert report.doc not in message, "the file name is in the table's own column, not again in the message"
    pages = pdf_page_count(SAMPLE_EVAL.parent / "how_language_models_work.pdf")
    assert pages == 8  # counted by hand: tokenization ... evaluation
    toggle = next(w for w in at.toggle if w.key == "rag.use_sample")
    assert toggle.help == ZH["rag.use_sample_help"].format(pages=pages) and "8" in toggle.help
    # the uploader's limit line in Chinese (components/builtin_text.py): a style rule for this uploader
    rule = ZH["app.upload_limit"].split("{")[0]
    assert any("st-key-rag-uploads" in str(h.proto.body) and rule in str(h.proto.body) for h in at.html)
    at.session_state["rag.tab"] = ZH["rag.tab.chat"]
    at.run()
    assert any(ZH["rag.english_only"].split("{")[0] in str(c.value) for c in at.caption)
    assert at.chat_input(key="rag.ask").placeholder == ZH["rag.ask"] and "What does LoRA freeze?" in ZH["rag.ask"]


def test_evaluate_shows_a_set_where_the_retrievers_differ(page):
    """The default set (paraphrased questions on the sample, answers and pages written by hand) separates
    the methods; the sample's own wording does not (every method finds every page)."""
    open_tab(page, "evaluate")
    assert page.radio(key="rag.eval_source").value == "paraphrased"
    summary = page.dataframe[0].value
    assert summary["questions"].tolist() == [17, 17, 17]
    assert summary["MRR"].nunique() > 1, "the methods score differently on the paraphrased set"
    page.radio(key="rag.eval_source").set_value("heldout").run()
    assert any("gnu_time_manual.pdf" in i.value for i in page.info), "the manual must be indexed first"
    open_tab(page, "documents")
    page.toggle(key="rag.use_heldout").set_value(True).run()
    page.button(key="rag.index_button").click().run()
    wait_for_index(page)
    open_tab(page, "evaluate")
    summary = page.dataframe[0].value
    assert summary["questions"].tolist() == [22, 22, 22] and summary["recall@4"].nunique() > 1


def test_a_chinese_question_gets_a_warning_that_the_models_read_english(page):
    open_tab(page, "chat")
    page.chat_input(key="rag.ask").set_value("LoRA 冻结了什么？").run(timeout=300)
    assert any(EN["rag.cjk_question"].split("{")[0] in w.value for w in page.warning)
