"""sweeper.tables: ablation statistics, display marks, formats renderers, paper layouts.

Everything runs on small hand-written DataFrames (no MLflow); the expected numbers are worked out
by hand in the comments.
"""

from __future__ import annotations

import io
import math
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from sweeper.tables import ablation, display, formats, paper
from trainables.errors import InputError


def small() -> pd.DataFrame:
    """Three methods with 3, 2 and 1 seeds.

    id/acc  a: .70 .72 .74 -> mean .72, std .02 (squares .0004+0+.0004 over 2 = .0004)
            b: .80 .84     -> mean .82, std .04/sqrt(2) = .0282843
            c: .60         -> mean .60, std unknown
    id/ece  a: .05 .05 .08 -> mean .06, std sqrt((.0001+.0001+.0004)/2) = .0173205
            b: .03 .05     -> mean .04, std .0141421
            c: .10
    """
    frame = pd.DataFrame(
        {
            "method": ["a", "a", "a", "b", "b", "c"],
            "seed": [0, 1, 2, 0, 1, 0],
            "id/acc": [0.70, 0.72, 0.74, 0.80, 0.84, 0.60],
            "id/ece": [0.05, 0.05, 0.08, 0.03, 0.05, 0.10],
        }
    )
    frame.attrs = {"params": ["method", "seed"], "metrics": ["id/acc", "id/ece"]}
    return frame


def test_t_table_is_the_student_t_quantile() -> None:
    def cdf(t: float, nu: int, steps: int = 2000) -> float:  # Simpson's rule on the t density
        c = math.exp(math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2)) / math.sqrt(nu * math.pi)
        f = lambda x: c * (1 + x * x / nu) ** (-(nu + 1) / 2)  # noqa: E731
        h = t / steps
        return 0.5 + h / 3 * (f(0) + f(t) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, steps)))

    for nu in range(1, 31):
        assert cdf(ablation.t_quantile(nu), nu) == pytest.approx(0.975, abs=1e-5)
    assert ablation.t_quantile(31) == ablation.t_quantile(1000) == 1.96
    assert math.isnan(ablation.t_quantile(0))
    assert math.isnan(ablation.ci_halfwidth(0.1, 1))


def test_mean_std_ci_n_by_hand() -> None:
    table = ablation.ablation_table(small(), ["method"], ["id/acc", "id/ece"])
    assert list(table.columns) == [
        "method",
        "id/acc mean",
        "id/acc std",
        "id/acc ci",
        "id/ece mean",
        "id/ece std",
        "id/ece ci",
        "n",
    ]
    assert list(table["method"]) == ["a", "b", "c"] and list(table["n"]) == [3, 2, 1]
    assert table["id/acc mean"].tolist() == pytest.approx([0.72, 0.82, 0.60])
    assert table["id/acc std"].tolist()[:2] == pytest.approx([0.02, 0.0282843], abs=1e-6)
    assert table["id/ece std"].tolist()[:2] == pytest.approx([0.0173205, 0.0141421], abs=1e-6)
    # 95% CI half-widths: a: 4.3027 * .02 / sqrt(3) = .0496837; b: 12.7062 * .0282843 / sqrt(2) = .254124
    assert table["id/acc ci"].tolist()[:2] == pytest.approx([0.0496837, 0.254124], abs=1e-6)
    assert math.isnan(table["id/acc std"].iloc[2]) and math.isnan(table["id/acc ci"].iloc[2])


def test_marks_cells_and_stat_in_markdown() -> None:
    table = ablation.ablation_table(small(), ["method"], ["id/acc", "id/ece"])
    lines = formats.to_markdown(table).splitlines()
    assert re.sub(r"\s+", " ", lines[0]) == "| method | id/acc | id/ece | n |"
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    # acc is higher-better: b bold, a underlined; ece is lower-better: b bold, a underlined, c plain
    assert cells[0] == ["a", "<u>0.720 ± 0.020</u>", "<u>0.060 ± 0.017</u>", "3"]
    assert cells[1] == ["b", "**0.820 ± 0.028**", "**0.040 ± 0.014**", "2"]
    assert cells[2] == ["c", "0.600", "0.100", "1"]  # one seed: the mean alone
    ci = formats.to_markdown(table, stat="ci")
    assert "<u>0.720 ± 0.050</u>" in ci and "**0.820 ± 0.254**" in ci
    assert "0.72 ± 0.02" in formats.to_markdown(table, precision=2)


def test_marks_follow_modes_ties_and_printed_precision() -> None:
    assert display.ranks([0.3, 0.1, 0.2, 0.3], "max") == [0, None, 1, 0]  # ties share bold
    assert display.ranks([0.3, 0.1, 0.2, math.nan], "min") == [None, 0, 1, None]
    assert display.ranks([0.7101, 0.7099, 0.5], "max", precision=3) == [0, 0, 1]  # both print 0.710
    table = ablation.ablation_table(small(), ["method"], ["id/acc"], modes={"id/acc": "min"})
    markdown = formats.to_markdown(table)
    assert "**0.600**" in markdown and "<u>0.720 ± 0.020</u>" in markdown


def test_delta_against_a_reference_row() -> None:
    table = ablation.ablation_table(small(), ["method"], ["id/acc", "id/ece"], delta={"method": "a"})
    assert math.isnan(table["id/acc delta"].iloc[0])  # the reference row itself
    assert table["id/acc delta"].tolist()[1:] == pytest.approx([0.10, -0.12])
    assert table["id/ece delta"].tolist()[1:] == pytest.approx([-0.02, 0.04])
    markdown = formats.to_markdown(table)
    assert "**0.820 ± 0.028** (+0.100)" in markdown and "0.600 (-0.120)" in markdown
    assert "0.100 (+0.040)" in markdown and "<u>0.720 ± 0.020</u> |" in markdown
    latex = formats.to_latex(table)
    assert r"\textbf{0.820 $\pm$ 0.028} ($+$0.100)" in latex and r"0.600 ($-$0.120)" in latex
    with pytest.raises(InputError, match="no row with method=zz; values of method: a, b, c") as error:
        ablation.ablation_table(small(), ["method"], ["id/acc"], delta={"method": "zz"}, where={"delta": "--delta"})
    assert error.value.where == "--delta"
    with pytest.raises(InputError, match="'seed' is not a row or column parameter"):
        ablation.ablation_table(small(), ["method"], ["id/acc"], delta={"seed": "0"})


def pivot_frame() -> pd.DataFrame:
    """method x L x 2 seeds; id/acc = base + 0.1 * L + 0.01 * seed, ft the best at L=1 only."""
    base = {("ft", 1): 0.60, ("ft", 2): 0.50, ("ours", 1): 0.55, ("ours", 2): 0.65, ("lp", 1): 0.40, ("lp", 2): 0.45}
    rows = [{"method": m, "L": L, "seed": s, "id/acc": b + 0.01 * s} for (m, L), b in base.items() for s in (0, 1)]
    frame = pd.DataFrame(rows)
    frame.attrs = {"params": ["method", "L", "seed"], "metrics": ["id/acc"]}
    return frame


def test_columns_pivot_ranks_each_column_group_and_deltas_within_it() -> None:
    table = ablation.ablation_table(pivot_frame(), ["method"], ["id/acc"], columns=["L"], delta={"method": "ft"})
    assert list(table.columns[:2]) == ["method", "L"] and len(table) == 6  # long form: one row per (method, L)
    g = display.grid(table)
    assert g.groups == ["L=1", "L=2"] and [line[0] for line in g.labels] == ["ft", "lp", "ours"] and g.n == [2, 2, 2]
    assert [[c.rank for c in line] for line in g.cells] == [[0, 1], [None, None], [1, 0]]
    # ours at L=2: 0.655 - 0.505 (ft at L=2) = +0.150
    assert g.cells[2][1].delta == pytest.approx(0.15) and math.isnan(g.cells[0][1].delta)
    markdown = formats.to_markdown(table)
    assert re.sub(r"\s+", " ", markdown.splitlines()[0]) == "| method | id/acc (L=1) | id/acc (L=2) | n |"
    assert "**0.655 ± 0.007** (+0.150)" in markdown
    latex = formats.to_latex(table)
    assert r"\multicolumn{1}{c}{L=1}" in latex and r"\cmidrule(lr){2-2} \cmidrule(lr){3-3}" in latex
    html = formats.to_html(table)
    assert '<th colspan="1">L=2</th>' in html and '<th rowspan="2">method</th>' in html
    # a missing (method, L) cell is a dash, and n moves into the cells when a row's cells differ
    frame = pivot_frame()
    frame = frame[~((frame["method"] == "lp") & (frame["L"] == 2))]
    frame = frame[~((frame["method"] == "ours") & (frame["L"] == 1) & (frame["seed"] == 1))]
    frame.attrs = pivot_frame().attrs
    markdown = formats.to_markdown(ablation.ablation_table(frame, ["method"], ["id/acc"], columns=["L"]))
    assert re.search(r"\| lp +\| +0\.405 ± 0\.007 \(n=2\) \| +– \|", markdown)
    assert "<u>0.550</u> (n=1)" in markdown and " n |" not in markdown
    with pytest.raises(InputError, match="'L' is a row parameter already"):
        ablation.ablation_table(pivot_frame(), ["method", "L"], ["id/acc"], columns=["L"])
    with pytest.raises(InputError, match="unknown column parameter 'K'") as error:
        ablation.ablation_table(pivot_frame(), ["method"], ["id/acc"], columns=["K"], where={"columns": "--columns"})
    assert error.value.where == "--columns"


def _body_cells(latex: str) -> list[list[str]]:
    body = latex.split("\\midrule\n", 1)[1].split("\\bottomrule", 1)[0]
    return [line.removesuffix(r" \\").split(" & ") for line in body.strip().splitlines()]


def test_latex_is_balanced_and_round_trips_its_numbers() -> None:
    frame = small()
    frame.loc[frame["method"] == "c", "method"] = "c_{x}&y"  # special characters in a label
    frame.attrs = small().attrs
    table = ablation.ablation_table(frame, ["method"], ["id/acc", "id/ece"], delta={"method": "a"})
    wrapped = formats.to_latex(table, stat="ci", caption="50% of a_b", label="tab:x")
    for latex in (formats.to_latex(table), wrapped):
        for env in set(re.findall(r"\\begin\{(\w+)\}", latex)):
            assert latex.count(rf"\begin{{{env}}}") == latex.count(rf"\end{{{env}}}") == 1
        unescaped = re.sub(r"\\[{}]", "", latex)
        depth = 0
        for ch in unescaped:
            depth += {"{": 1, "}": -1}.get(ch, 0)
            assert depth >= 0
        assert depth == 0
        assert latex.index(r"\toprule") < latex.index(r"\midrule") < latex.index(r"\bottomrule")
        assert r"c\_\{x\}\&y" in latex and not re.search(r"[^\\][_%]", latex)
        assert latex.count(r"\textbf{") == 2 and latex.count(r"\underline{") == 2
        rows = _body_cells(latex)
        assert [r[0] for r in rows] == ["a", "b", r"c\_\{x\}\&y"]
        for i, line in enumerate(rows):
            assert line[-1] == str(table["n"].iloc[i])
            for j, m in enumerate(("id/acc", "id/ece")):
                numbers = [float(x) for x in re.findall(r"\d+\.\d+", line[1 + j])]
                signs = re.findall(r"\(\$([+-])\$", line[1 + j])
                assert numbers[0] == float(f"{table[f'{m} mean'].iloc[i]:.3f}")
                stat = "ci" if "caption" in latex else "std"
                spread = table[f"{m} {stat}"].iloc[i]
                if not math.isnan(spread):
                    assert numbers[1] == float(f"{spread:.3f}")
                d = table[f"{m} delta"].iloc[i]
                if not math.isnan(d):
                    assert signs and float(signs[0] + str(numbers[-1])) == float(f"{d:.3f}")
    assert wrapped.startswith("\\begin{table}[t]\n\\centering\n\\begin{tabular}{lrrr}")
    assert wrapped.endswith("\\caption{50\\% of a\\_b}\n\\label{tab:x}\n\\end{table}\n")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.seen: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.stack.append(tag)
        self.seen.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack.pop() == tag


def test_html_is_one_well_formed_table_with_marks() -> None:
    frame = small()
    frame.loc[frame["method"] == "c", "method"] = "<c & d>"
    frame.attrs = small().attrs
    html = formats.to_html(ablation.ablation_table(frame, ["method"], ["id/acc", "id/ece"]), caption="x<y")
    parser = _Tags()
    parser.feed(html)
    assert parser.stack == [] and parser.seen[0] == "table" and parser.seen.count("table") == 1
    assert parser.seen.count("b") == 2 and parser.seen.count("u") == 2 and parser.seen.count("tr") == 4
    assert "<b>0.820 &plusmn; 0.028</b>" in html and "&lt;c &amp; d&gt;" in html and "<caption>x&lt;y</caption>" in html


def test_csv_parses_back_and_terminal_marks() -> None:
    table = ablation.ablation_table(small(), ["method"], ["id/acc", "id/ece"], delta={"method": "a"})
    back = pd.read_csv(io.StringIO(formats.to_csv(table)))
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert formats.render(table, "csv") == formats.to_csv(table)
    colored = formats.to_text(table, color=True)
    assert "\x1b[1m" in colored and "\x1b[4m" in colored  # bold and underline
    plain = formats.to_text(table, title="t", stat="ci")
    assert "0.820 ± 0.254 (+0.100)" in plain and "\x1b" not in plain


def domain_frame() -> pd.DataFrame:
    """ft and ours x 2 seeds with two OOD domains, compat and WiSE metrics; lp has no wise metrics."""
    rows = []
    for method, shift in (("ft", 0.0), ("ours", 0.1), ("lp", -0.1)):
        for seed in (0, 1):
            e = 0.02 * seed  # seed 1 adds .02 to every accuracy: std of two seeds = .02 / sqrt(2)
            row = {
                "method": method,
                "seed": seed,
                "lr": 1e-3,
                "id/acc": 0.80 + shift + e,
                "id/ece": 0.05 - shift / 10,
                "id/nll": 0.5,
                "ood/sketch/acc": 0.40 + shift + e,
                "ood/clipart/acc": 0.50 + shift + e,
                "ood/avg_acc": 0.45 + shift + e,
                "ood/avg_ece": 0.1,
                "compat/v1/acc": 0.7 + shift + e,
                "compat/v2/acc": 0.6 + shift + e,
                "compat/hmean": 0.65 + shift + e,
            }
            if method != "lp":
                for alpha, w in (("0.0", 0.0), ("0.5", 0.5), ("1.0", 1.0)):
                    # ID rises with alpha; OOD peaks in the middle: .40, .50, .45 (+ shift, + seed)
                    row[f"wise/{alpha}/id/acc"] = 0.6 + 0.2 * w + shift + e
                    row[f"wise/{alpha}/ood/avg_acc"] = {"0.0": 0.40, "0.5": 0.50, "1.0": 0.45}[alpha] + shift + e
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs = {"params": ["method", "seed", "lr"], "metrics": [c for c in frame.columns if "/" in c]}
    return frame


def test_domains_layout() -> None:
    table = paper.domains_table(domain_frame())
    assert table.attrs["metrics"] == ["id/acc", "ood/clipart/acc", "ood/sketch/acc", "ood/avg_acc", "id/ece"]
    assert list(table["method"]) == ["ft", "lp", "ours"]
    assert table["ood/sketch/acc mean"].tolist() == pytest.approx([0.41, 0.31, 0.51])
    header = re.sub(r"\s+", " ", formats.to_markdown(table).splitlines()[0])
    assert header == "| method | ID | clipart | sketch | OOD avg | ID ECE | n |"
    assert "**0.060 ± 0.000**" not in formats.to_markdown(table)  # ece: lower is better -> ours
    assert "**0.040 ± 0.000**" in formats.to_markdown(table)
    ordered = paper.domains_table(domain_frame(), domains=["sketch", "clipart"])
    assert ordered.attrs["metrics"][1:3] == ["ood/sketch/acc", "ood/clipart/acc"]
    with pytest.raises(InputError, match="OOD domain\\(s\\) real; domains logged: clipart, sketch"):
        paper.domains_table(domain_frame(), domains=["real"])
    with pytest.raises(InputError) as error:
        paper.domains_table(small(), where={"layout": "--layout"})
    assert error.value.where == "--layout" and "domains logged: (none)" in str(error.value)


def test_compat_layout() -> None:
    table = paper.compat_table(domain_frame(), delta={"method": "ft"})
    assert table.attrs["metrics"] == ["compat/v1/acc", "compat/v2/acc", "compat/hmean"]
    assert table["compat/hmean mean"].tolist() == pytest.approx([0.66, 0.56, 0.76])
    assert table["compat/v2/acc delta"].tolist()[1:] == pytest.approx([-0.1, 0.1])
    lines = formats.to_markdown(table).splitlines()
    assert re.sub(r"\s+", " ", lines[0]) == "| method | v1 | v2 | HM | n |"
    assert "**0.760 ± 0.014** (+0.100)" in lines[4]
    with pytest.raises(InputError, match="missing: compat/v1/acc, compat/v2/acc, compat/hmean"):
        paper.compat_table(small())


def test_wise_layout() -> None:
    table = paper.wise_table(domain_frame())
    assert list(table["alpha"]) == ["0.0", "0.5", "1.0"] and list(table["n"]) == [4, 4, 4]  # ft + ours, lp has none
    # ID at alpha .5: (.7 + .72 + .8 + .82) / 4 = .76; OOD: (.5 + .52 + .6 + .62) / 4 = .56
    assert table["id/acc mean"].tolist() == pytest.approx([0.66, 0.76, 0.86])
    assert table["ood/avg_acc mean"].tolist() == pytest.approx([0.46, 0.56, 0.51])
    markdown = formats.to_markdown(table)
    assert re.sub(r"\s+", " ", markdown.splitlines()[0]) == "| alpha | ID acc | OOD avg acc | n |"
    assert "**0.560 ± " in markdown and "**0.860 ± " in markdown
    split = paper.wise_table(domain_frame(), ["method"], delta={"alpha": "1.0"})
    g = display.grid(split)
    assert g.groups == ["method=ft", "method=ours"] and g.labels == [["0.0"], ["0.5"], ["1.0"]]
    ours = split[(split["method"] == "ours") & (split["alpha"] == "0.5")]
    assert ours["ood/avg_acc mean"].item() == pytest.approx(0.61)
    # ft: OOD at alpha .5 minus OOD at alpha 1: .51 - .46 = +.05
    assert g.cells[1][1].delta == pytest.approx(0.05) and math.isnan(g.cells[2][1].delta)
    assert formats.to_csv(split).splitlines()[1].startswith("0.0,ft,")
    with pytest.raises(InputError, match="wise/<alpha>/id/acc"):
        paper.wise_table(small())
    with pytest.raises(InputError, match="unknown column parameter 'K'"):
        paper.wise_table(domain_frame(), ["K"])


def test_layout_dispatch_errors() -> None:
    where = {"layout": "--layout", "metrics": "--metrics", "rows": "--rows"}
    unknown = "unknown layout 'nope'; choose one of ablation, domains, compat, wise"
    with pytest.raises(InputError, match=unknown) as error:
        paper.layout_table("nope", domain_frame(), where=where)
    assert error.value.where == "--layout"
    with pytest.raises(InputError) as error:
        paper.layout_table("compat", domain_frame(), metrics=["id/acc"], where=where)
    assert error.value.where == "--metrics"
    with pytest.raises(InputError) as error:
        paper.layout_table("wise", domain_frame(), rows=["method"], where=where)
    assert error.value.where == "--rows"
    table = paper.layout_table("ablation", domain_frame(), rows=["method"], metrics=["ood/avg_acc"])
    assert table.attrs["metrics"] == ["ood/avg_acc"] and len(table) == 3
    assert paper.layout_table("domains", domain_frame()).attrs["rows"] == ["method"]
