"""Open every registered page from the navigation in a real browser."""

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from components.i18n import strings
from components.page_registry import PAGES
from components.tokenizers.session import UPLOAD_MAX_MB
from tests.page_checks import page_checks
from tests.sample_pdfs import PDFS

from .conftest import shoot, wait_until_idle

pytestmark = pytest.mark.e2e
EN = strings("en")


def must_show(key: str) -> str:
    """The selector a page's own test module declares (BROWSER_MUST_SHOW), beyond its title."""
    return page_checks(key).BROWSER_MUST_SHOW


def must_show_state(key: str) -> str:
    """ "visible" unless the page's module says its element is only attached (a canvas table's cells)."""
    return getattr(page_checks(key), "BROWSER_MUST_SHOW_STATE", "visible")


def _open_from_navigation(page, app_url, info):
    page.goto(app_url)
    wait_until_idle(page)
    title = EN[f"page.{info.key}.title"]
    if len(PAGES) > 1:  # Streamlit shows no navigation for a single page
        page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
        wait_until_idle(page)
    page.wait_for_selector(f'h1:has-text("{title}")')
    page.wait_for_selector(must_show(info.key), state=must_show_state(info.key))
    wait_until_idle(page)
    return title


def _pick_experiment(page, panel, title: str) -> None:
    """Open the panel's experiment picker and choose one. A rerun that lands just as the box is clicked
    closes its list again (seen once in CI), so the click is retried until the option shows."""
    box = panel.locator('[data-testid="stSelectbox"]').filter(has_text=EN["exp.pick"])
    option = page.get_by_role("option", name=title)
    for _ in range(5):
        wait_until_idle(page)
        box.click()
        try:
            option.wait_for(timeout=10_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    option.click()


@pytest.mark.parametrize("info", PAGES, ids=lambda p: p.key)
def test_every_page_opens_from_the_navigation(page, app_url, info):
    _open_from_navigation(page, app_url, info)
    assert page.locator('[data-testid="stException"]').count() == 0
    # The shared sidebar is there on every page.
    assert page.locator('[data-testid="stSidebar"]').get_by_text("Language / 语言").count() == 1
    shoot(page, info.key)


def test_home_shows_the_learning_map_and_environment(page, app_url):
    page.goto(app_url)
    wait_until_idle(page)
    # Explicit waits: "idle" can be seen between the page load and the first script run.
    page.get_by_text("offline", exact=True).first.wait_for()
    for stage in ("Foundations", "Tokenizers & attention", "Multimodal"):
        assert page.get_by_text(stage, exact=False).count() >= 1


def test_switching_to_chinese_translates_the_app(page, app_url):
    page.goto(app_url)
    wait_until_idle(page)
    page.locator('[data-testid="stSidebar"]').get_by_text("简体中文").click()
    wait_until_idle(page)
    page.wait_for_selector(f'h1:has-text("{strings("zh")["page.home.title"]}")')
    assert page.get_by_text("学习路线", exact=True).count() == 1
    shoot(page, "home-zh")


def test_clicking_a_model_view_map_opens_that_head(page, app_url):
    attention = next(p for p in PAGES if p.key == "attention")
    _open_from_navigation(page, app_url, attention)
    page.get_by_role("tab", name=EN["attention.tab.model"]).click()
    wait_until_idle(page)
    chart = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').first
    chart.wait_for()
    # Where plotly drew the tile of layer 2, head 3, in pixels of the chart.
    x, y = chart.evaluate(
        """(gd) => {
            const tiles = gd.data[1];
            const i = tiles.customdata.findIndex(c => c[0] == 2 && c[1] == 3);
            const L = gd._fullLayout;
            return [L.xaxis.d2p(tiles.x[i]) + L._size.l, L.yaxis.d2p(tiles.y[i]) + L._size.t];
        }"""
    )
    box = chart.bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_selector("text=Layer 2, head 3")
    wait_until_idle(page)
    assert page.get_by_role("tab", name=EN["attention.tab.head"]).get_attribute("aria-selected") == "true"
    shoot(page, "attention-model-view-click")


def test_the_try_this_panel_stays_open_while_it_is_used(page, app_url):
    """Opened once, the panel stays open through the reruns its own widgets cause. Without a key Streamlit
    placed it by position: when an element above it came or went between runs (the attention page's
    placeholder of its first pass), the browser drew a new, closed panel and hid "Measure and check"."""
    attention = next(p for p in PAGES if p.key == "attention")
    _open_from_navigation(page, app_url, attention)
    panel = page.locator('[data-testid="stExpander"]').filter(has_text=EN["exp.panel"].format(n=3))
    panel.locator("summary").click()
    details = panel.locator("details")
    assert details.get_attribute("open") is not None
    wait_until_idle(page)
    assert details.get_attribute("open") is not None, "the page's own rerun closed the panel"
    _pick_experiment(page, panel, EN["exp.attention.sink.title"])
    panel.get_by_text(EN["exp.attention.sink.choice.most"]).wait_for(state="attached")
    wait_until_idle(page)
    assert details.get_attribute("open") is not None, "choosing an experiment closed the panel"
    panel.get_by_text(EN["exp.attention.sink.choice.most"]).click()
    wait_until_idle(page)
    assert details.get_attribute("open") is not None, "choosing a prediction closed the panel"
    assert panel.get_by_role("button", name=EN["exp.check"]).is_visible()
    shoot(page, "attention-try-this-open")


AFTER = "(el) => [getComputedStyle(el, '::after').content, getComputedStyle(el).fontSize]"


def test_streamlits_own_texts_read_in_chinese(page, app_url):
    """Streamlit draws its uploader line, the running indicator's Stop and its menu in English: in Chinese
    each English text is hidden and ours shown in its place (components/builtin_text.py). The decoding page
    tells the learner to press that Stop: the tokens drawn so far stay."""
    zh = strings("zh")
    page.goto(f"{app_url}/tokenizers?lang=zh")
    wait_until_idle(page)
    line = page.locator('.st-key-tok-upload [data-testid="stFileUploaderDropzoneInstructions"] span')
    types = "、".join(("TXT", "MD", "PY", "JSON", "CSV"))
    assert line.evaluate(AFTER) == [f'"{zh["app.upload_limit"].format(mb=UPLOAD_MAX_MB, types=types)}"', "0px"]
    page.locator('[data-testid="stMainMenu"]').click()
    labels = page.locator('[data-testid="stMainMenuItemLabel"]')
    labels.first.wait_for()
    shown = [labels.nth(i).evaluate(AFTER)[0] for i in range(labels.count())]
    assert shown == [f'"{zh["app.menu.print"]}"', f'"{zh["app.menu.record"]}"'], "an item Streamlit added is English"
    page.keyboard.press("Escape")
    page.goto(f"{app_url}/decoding?lang=zh")
    wait_until_idle(page)
    page.get_by_role("spinbutton", name=zh["dec.max_new"]).fill("200")
    page.keyboard.press("Enter")
    wait_until_idle(page)
    page.get_by_role("button", name=zh["dec.run"], exact=True).click()
    page.locator('span[title^="#0 · p="]').first.wait_for()
    stop = page.locator('[data-testid="stStatusWidget"] [data-testid="stBaseButton-header"]')
    assert stop.evaluate(AFTER) == [f'"{zh["app.stop"]}"', "0px"]
    shoot(page, "decoding-running-zh")
    stop.click()
    wait_until_idle(page)
    assert page.locator('span[title^="#0 · p="]').count() > 0, "the tokens generated so far stay"
    assert page.locator('[data-testid="stException"]').count() == 0


def test_uploading_invalid_utf8_warns_and_still_tokenizes(page, app_url, tmp_path):
    tokenizers = next(p for p in PAGES if p.key == "tokenizers")
    _open_from_navigation(page, app_url, tokenizers)
    upload = tmp_path / "latin1.txt"
    upload.write_bytes("café au lait".encode("latin-1") + b" \xff end")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(upload))
    page.get_by_text("not valid UTF-8", exact=False).first.wait_for()
    wait_until_idle(page)
    assert "caf\ufffd au lait" in page.get_by_label("Text", exact=True).input_value()
    assert page.locator('[data-testid="stException"]').count() == 0
    shoot(page, "tokenizers-upload")


def test_decoding_streams_tokens_coloured_by_probability(page, app_url):
    decoding = next(p for p in PAGES if p.key == "decoding")
    _open_from_navigation(page, app_url, decoding)
    page.get_by_role("spinbutton", name=EN["dec.max_new"]).fill("8")
    page.keyboard.press("Enter")
    wait_until_idle(page)
    page.get_by_role("button", name=EN["dec.run"]).click()
    page.locator('span[title^="#0 · p="]').first.wait_for()
    wait_until_idle(page)
    page.get_by_text("tokens/s", exact=False).nth(3).wait_for()  # all four preset columns ran
    assert page.locator('span[title^="#0 · p="]').count() == 3  # beam search shows its text and tree instead
    assert page.locator('[data-testid="stException"]').count() == 0
    shoot(page, "decoding-generated")
    # The beam tree sits below the fold (Streamlit scrolls inside its own container, which a full-page
    # screenshot does not unroll): scroll to it and photograph the chart itself, to look at its labels.
    tree = page.locator('[data-testid="stPlotlyChart"]').last
    tree.scroll_into_view_if_needed()
    tree.locator(".main-svg").first.wait_for()
    tree.screenshot(path=str(shoot(page, "decoding-generated").with_name("decoding-beam-tree.png")))


def test_the_quantization_benchmark_runs_two_variants_and_shows_the_table(page, app_url):
    quantization = next(p for p in PAGES if p.key == "quantization")
    _open_from_navigation(page, app_url, quantization)
    variants = page.locator('[data-testid="stMultiSelect"]').first.locator("input")
    variants.click()
    for _ in range(6):  # the default set ends with six variants after fp32: keep fp32 alone
        variants.press("Backspace")
        wait_until_idle(page)
    variants.fill(EN["quantization.variant.gguf-q8_0"])
    variants.press("Enter")
    wait_until_idle(page)
    page.keyboard.press("Escape")
    tokens = page.locator('[data-testid="stSlider"] input[type="range"]').first
    tokens.focus()
    tokens.press("Home")  # 1,024
    wait_until_idle(page)
    tokens.press("ArrowRight")  # 2,048: two windows, so the paired interval has a value
    wait_until_idle(page)
    page.get_by_role("spinbutton", name=EN["quantization.runs"]).fill("1")
    page.keyboard.press("Enter")
    wait_until_idle(page)
    page.get_by_role("button", name=EN["quantization.start"]).click()
    done = page.locator('[data-testid="stAlertContentSuccess"]').first
    done.wait_for(timeout=300_000)
    wait_until_idle(page)
    assert done.inner_text().startswith("2 of 2 variants measured")
    results = page.locator('[data-testid="stDataFrame"]').nth(1)  # after the variants-on-this-machine table
    results.scroll_into_view_if_needed()
    assert page.get_by_text(EN["quantization.table_note"].split("{")[0]).count() == 1  # the table's own caption
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 2  # size vs perplexity, decode speed
    assert page.locator('[data-testid="stText"]').count() >= 2  # both greedy continuations
    assert page.locator('[data-testid="stException"]').count() == 0
    results.screenshot(path=str(shoot(page, "quantization-run").with_name("quantization-table.png")))


def test_the_try_this_panel_quantizes_a_gpt_trained_here_in_chinese(page, app_url):
    """The suggested first run, in Chinese: the panel's set-up trains the demo GPT (real fp32 weights),
    puts it in the picker with its GGUF rows, and the run's table shows the file bits and weight error."""
    zh = strings("zh")
    quantization = next(p for p in PAGES if p.key == "quantization")
    _open_from_navigation(page, app_url, quantization)
    page.locator('[data-testid="stSidebar"]').get_by_text("简体中文").click()
    page.wait_for_selector(f'h1:has-text("{zh["page.quantization.title"]}")')
    wait_until_idle(page)
    page.get_by_text(zh["exp.panel"].format(n=3)).click()
    wait_until_idle(page)
    done = page.get_by_text(zh["exp.set_up_done"].split("{")[0]).first
    try:
        for _ in range(3):  # a click that lands during a rerun is dropped by Streamlit (seen in CI)
            wait_until_idle(page)
            page.get_by_role("button", name=zh["exp.setup"]).click()
            try:  # the set-up trains the demo GPT first on a cold server (~45 s)
                done.wait_for(timeout=150_000)
                break
            except PlaywrightTimeout:
                shoot(page, "quantization-real-set-up-retry")
        done.wait_for(timeout=150_000)
    finally:
        shoot(page, "quantization-real-set-up-zh")
    wait_until_idle(page)
    tokens = page.locator('[data-testid="stSlider"] input[type="range"]').first
    tokens.focus()
    tokens.press("Home")  # 1,024 tokens: 16 windows of the GPT's 64 positions
    wait_until_idle(page)
    page.get_by_role("spinbutton", name=zh["quantization.runs"]).fill("1")
    page.keyboard.press("Enter")
    wait_until_idle(page)
    page.get_by_role("button", name=zh["quantization.start"]).click()
    done = page.locator('[data-testid="stAlertContentSuccess"]').first
    done.wait_for(timeout=300_000)
    wait_until_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text(zh["quantization.fitted"].split("{")[0]).count() == 1
    chosen = page.locator('[data-testid="stMultiSelect"]').first.inner_text()
    assert zh["quantization.variant.gguf-q4_k_m"] in chosen and zh["quantization.variant.gguf-q5_1"] in chosen
    results = page.locator('[data-testid="stDataFrame"]').nth(1)
    results.scroll_into_view_if_needed()
    results.screenshot(path=str(shoot(page, "quantization-real-zh").with_name("quantization-real-table-zh.png")))


def test_a_try_this_set_up_changes_the_settings_the_browser_shows(page, app_url):
    """The set-up button gives persisted widgets their new values in a real browser (deleting their keys
    did not: the browser kept showing, and sending, the old value)."""
    scratch = next(p for p in PAGES if p.key == "scratch_gpt")
    _open_from_navigation(page, app_url, scratch)
    n_embd = page.get_by_role("spinbutton", name=EN["scratch_gpt.cfg.n_embd"])
    assert n_embd.input_value() == "128"
    panel = page.locator('[data-testid="stExpander"]').filter(has_text=EN["exp.panel"].format(n=3))
    panel.locator("summary").click()
    wait_until_idle(page)
    _pick_experiment(page, panel, EN["exp.scratch_gpt.width.title"])
    done = page.get_by_text(EN["exp.set_up_done"].split("{")[0]).first
    for _ in range(4):  # a click that lands during a rerun is dropped by Streamlit (seen once in CI)
        wait_until_idle(page)
        page.get_by_role("button", name=EN["exp.setup"]).click()
        try:
            done.wait_for(timeout=30_000)
            break
        except PlaywrightTimeout:
            shoot(page, "try-this-set-up-retry")
    done.wait_for()
    wait_until_idle(page)
    assert n_embd.input_value() == "256"


def test_rag_indexes_a_real_upload_and_answers_with_its_sources(page, app_url):
    rag = next(p for p in PAGES if p.key == "rag")
    _open_from_navigation(page, app_url, rag)
    page.locator(must_show("rag")).first.wait_for(state="attached", timeout=120_000)  # indexed
    pdf = PDFS / "pdflatex-4-pages.pdf"
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(pdf))
    wait_until_idle(page)
    button = page.get_by_role("button", name=EN["rag.index"])
    button.click()
    page.wait_for_timeout(1000)
    # The index button is disabled while the job runs and enabled again when the new collection is in.
    page.wait_for_function(
        "() => [...document.querySelectorAll('button')].some(b => b.innerText.includes("
        f"{EN['rag.index']!r}) && !b.disabled)",
        timeout=180_000,
    )
    wait_until_idle(page)
    shoot(page, "rag-documents")
    page.get_by_role("tab", name=EN["rag.tab.chat"]).click()
    wait_until_idle(page)
    box = page.get_by_placeholder(EN["rag.ask"])
    box.fill("What does top-p sampling keep?")
    box.press("Enter")
    page.get_by_text(EN["rag.prompt"]).first.wait_for(timeout=240_000)
    wait_until_idle(page)
    # The first source's card names its document and page.
    assert page.locator('[data-testid="stExpander"]', has_text="[1] ").count() >= 1
    assert page.get_by_text(", page ", exact=False).count() >= 1
    assert page.locator('[data-testid="stException"]').count() == 0
    shoot(page, "rag-chat")


def test_a_teachers_link_opens_the_same_view_in_another_browser_session(browser, app_url):
    """The teacher sets a view; a student's separate browser session opens the link and sees the same."""
    teacher = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    teacher.set_default_timeout(180_000)
    teacher.goto(f"{app_url}/attention?lang=zh")
    wait_until_idle(teacher)
    zh = strings("zh")
    teacher.wait_for_selector(f'h1:has-text("{zh["page.attention.title"]}")')
    box = teacher.get_by_label(zh["attention.text"], exact=True)
    box.fill("老师的句子：猫坐在垫子上。")
    box.press("Control+Enter")
    wait_until_idle(teacher)
    teacher.wait_for_function("() => location.search.includes('text=')")
    link = teacher.url
    assert "lang=zh" in link
    student = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    student.set_default_timeout(180_000)
    student.goto(link)
    wait_until_idle(student)
    student.wait_for_selector(f'h1:has-text("{zh["page.attention.title"]}")')
    student.wait_for_selector('[data-testid="stPlotlyChart"] .main-svg')
    assert student.get_by_label(zh["attention.text"], exact=True).input_value() == "老师的句子：猫坐在垫子上。"
    assert student.locator('[data-testid="stException"]').count() == 0
    shoot(student, "shared-link-zh")
    teacher.context.close()
    student.context.close()
