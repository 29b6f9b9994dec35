"""The list of pages: app.py builds the navigation from it, Home draws the
learning map from it, and the tests enumerate it."""

from __future__ import annotations

from dataclasses import dataclass

# The LLM learning path, in order; each key has "stage.<key>" and
# "stage.<key>.blurb" strings.
STAGES = (
    "foundations",
    "tokens_attention",
    "generation",
    "finetuning",
    "rag",
    "deployment",
    "multimodal",
    "safety",
)


@dataclass(frozen=True)
class PageInfo:
    key: str  # i18n: "page.<key>.title" and "page.<key>.blurb"
    path: str
    icon: str
    stage: str | None

    @property
    def url_path(self) -> str:
        return self.key


HOME = PageInfo("home", "app_pages/home.py", ":material/map:", None)
TOPICS: tuple[PageInfo, ...] = (
    PageInfo("scratch_gpt", "app_pages/scratch_gpt.py", ":material/construction:", "foundations"),
    PageInfo("architectures", "app_pages/architectures.py", ":material/account_tree:", "foundations"),
    PageInfo("tokenizers", "app_pages/tokenizers.py", ":material/segment:", "tokens_attention"),
    PageInfo("attention", "app_pages/attention.py", ":material/visibility:", "tokens_attention"),
    PageInfo("decoding", "app_pages/decoding.py", ":material/alt_route:", "generation"),
    PageInfo("lora", "app_pages/lora.py", ":material/tune:", "finetuning"),
    PageInfo("alignment", "app_pages/alignment.py", ":material/how_to_vote:", "finetuning"),
    PageInfo("classifier", "app_pages/classifier.py", ":material/category:", "finetuning"),
    PageInfo("rag", "app_pages/rag.py", ":material/quick_reference_all:", "rag"),
    PageInfo("agents", "app_pages/agents.py", ":material/smart_toy:", "rag"),
    PageInfo("serving", "app_pages/serving.py", ":material/dns:", "deployment"),
    PageInfo("quantization", "app_pages/quantization.py", ":material/speed:", "deployment"),
    PageInfo("compression", "app_pages/compression.py", ":material/compress:", "deployment"),
    PageInfo("inference", "app_pages/inference.py", ":material/bolt:", "deployment"),
    PageInfo("vision", "app_pages/vision.py", ":material/image_search:", "multimodal"),
    PageInfo("trust", "app_pages/trust.py", ":material/verified_user:", "safety"),
)
PAGES: tuple[PageInfo, ...] = (HOME, *TOPICS)


def pages_in_stage(stage: str) -> list[PageInfo]:
    return [p for p in TOPICS if p.stage == stage]
