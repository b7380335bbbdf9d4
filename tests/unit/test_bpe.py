"""The torch-free BPE counter agrees with open_clip's SimpleTokenizer on every text, and neither
importing it nor counting loads torch or open_clip."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from open_clip.tokenizer import SimpleTokenizer

from trainables.data.captions import CLASS_TEMPLATES, STYLE_PHRASES, TASK_TEMPLATES
from trainables.models.bpe import count_tokens

REFERENCE = SimpleTokenizer()

TRICKY = [
    "",
    " ",
    "\t\n  \r",
    "a photo of a",
    "A PHOTO OF A",
    "a  photo\tof\na",
    "  padded  ",
    "it's",
    "IT'S",
    "they're we've I'm you'll he'd can't",
    "'s",
    "'ſ",
    "'ſa",
    "rock'n'roll",
    "...",
    "!?!?",
    "a, b; c: d.",
    "(x) [y] {z}",
    "--==++",
    "e.g.",
    "C++",
    "#hashtag @user",
    "0",
    "2024",
    "3.14159",
    "1,000,000",
    "x1y2z3",
    "٣٤٥",
    "Ⅻ",
    "café",
    "naïve résumé",
    "Ångström",
    "straße",
    "İstanbul",
    "ǅemal",
    "Kelvin K",
    "ﬁne",
    "日本語のテキスト",
    "中文",
    "Привет мир",
    "مرحبا",
    "😀",
    "👍🏽",
    "👨‍👩‍👧",
    "🇫🇷 flag",
    "a😀b",
    # ftfy decodes entities (not when the text has a "<"), then CLIP twice more; ftfy repairs mojibake
    "&amp;",
    "&amp;amp;",
    "&amp;amp;amp;",
    "<b>&amp;amp;</b>",
    "&lt;b&gt;",
    "&#39;q&#39;",
    "&nbsp;",
    "Ã©",
    "â€™",
    "<start_of_text>",
    "<end_of_text>",
    "<START_OF_TEXT>x<end_of_text>",
    "<ſtart_of_text>>",
    "</w>",
    "a</w>b",
    "Dr. Jekyll",
    "habib",  # the last merge CLIP uses, and the first it leaves out
    "supercalifragilisticexpialidocious",
    "x" * 300,
    "ab" * 200,
    "pneumonoultramicroscopic" * 5,
    "\x00\x01\x7f",
    "\u200b zero width",
    "\u00a0nbsp\u2003em",
    "tab\x85nel",
    *CLASS_TEMPLATES,
    *TASK_TEMPLATES["colour"],
    *(phrase for pair in STYLE_PHRASES.values() for phrase in pair),
    *(template.format("golden retriever") for template in CLASS_TEMPLATES),
]


@pytest.mark.parametrize("text", TRICKY)
def test_count_equals_simple_tokenizer(text: str) -> None:
    assert count_tokens(text) == len(REFERENCE.encode(text))


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_count_equals_simple_tokenizer_on_any_text(text: str) -> None:
    assert count_tokens(text) == len(REFERENCE.encode(text))


def test_counts_without_loading_torch_or_open_clip() -> None:
    probe = (
        "import sys\nfrom trainables.models.bpe import count_tokens\n"
        "print(count_tokens('a photo of a'), ' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    count, *modules = out.stdout.split()
    assert count == "4"
    assert not {"torch", "open_clip"} & set(modules)
