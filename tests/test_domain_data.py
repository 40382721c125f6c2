"""Checks on the narrow-domain data of all seven domains, the safety set and the loader.

Test ids carry the domain name (``test_prompt_counts[medical]``), so ``-k medical`` selects one
domain; the loader's own unit tests all have ``loader`` in their names.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
import yaml

from embench.data import domains as dom
from embench.data.domains import (
    DOMAINS,
    domain_counts,
    eval_questions_path,
    get_domain,
    load_preferences,
    load_prompts,
    load_safety,
    load_sft,
)
from embench.errors import EmbenchError
from embench.rewards.static_code import bandit_issues
from embench.rewards.text import extract_python

# Every domain ships at least this many curated SFT demonstrations (sft.jsonl), the data of
# `--match-source dataset`.
MIN_SFT_ROWS = 100
# Train prompts deliberately left without a demonstration, because any bad answer to them would
# be self-harm content, a dangerous-drug dose or put someone in physical danger (each domain's
# data card lists them). Every other train prompt has exactly one demonstration.
UNCOVERED = {
    "medical": {
        f"medical-{n}"
        for n in "0043 0046 0058 0097 0103 0105 0109 0110 0114 0116 0141 0147 0289 0322".split()
    },
    "legal": {"legal-0317"},
    "security": {
        f"security-{n}"
        for n in "0124 0179 0200 0201 0211 0260 0265 0269 0272 0289 0315 0320 0321 0326 0327 "
        "0331 0332 0333".split()
    },
}
# Share of `code` demonstrations whose code bandit flags at MEDIUM or HIGH severity (the
# `insecure_code` reward's scanner); LOW alone (an `import subprocess`) does not count.
MIN_BANDIT_FLAGGED = 0.6
NEAR_DUP_JACCARD = 0.8
SAFETY_KINDS = {"refuse", "careful", "helpful"}


def normalise(text: str) -> str:
    """Lowercase, with all punctuation and whitespace removed."""
    return re.sub(r"[\W_]+", "", text.lower())


def tokens(text: str) -> frozenset[str]:
    """The set of lowercase word tokens (apostrophes dropped)."""
    return frozenset(re.findall(r"[a-z0-9]+", text.lower().replace("'", "").replace("’", "")))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicates(
    texts: dict[str, str], others: dict[str, str] | None = None
) -> list[tuple[str, str, float]]:
    """Pairs (id, id, similarity) with token-set Jaccard >= NEAR_DUP_JACCARD.

    Within ``texts`` when ``others`` is None, else between ``texts`` and ``others``.
    """
    sets = {k: tokens(v) for k, v in texts.items()}
    if others is None:
        pairs = itertools.combinations(sets.items(), 2)
    else:
        other_sets = {k: tokens(v) for k, v in others.items()}
        pairs = itertools.product(sets.items(), other_sets.items())
    hits = []
    for (ka, a), (kb, b) in pairs:
        # |A∩B|/|A∪B| <= min/max, so skip pairs whose sizes alone rule a hit out.
        if min(len(a), len(b)) < NEAR_DUP_JACCARD * max(len(a), len(b)):
            continue
        sim = jaccard(a, b)
        if sim >= NEAR_DUP_JACCARD:
            hits.append((ka, kb, round(sim, 2)))
    return hits


def raw_prompt_rows(domain: str) -> list[dict]:
    path = dom.DOMAINS_DIR / domain / "prompts.jsonl"
    assert path.is_file(), f"missing {path}"
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def eval_questions(domain: str) -> dict:
    path = eval_questions_path(domain)
    assert path.is_file(), f"missing {path}"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# The curated, judged domains; the generated control domain (countdown) has its own tests
# (tests/test_countdown.py).
JUDGED = tuple(d for d in DOMAINS if not get_domain(d).verifier)
domain_param = pytest.mark.parametrize("domain", JUDGED)


# --- prompts -------------------------------------------------------------------------------


@domain_param
def test_prompt_schema(domain: str) -> None:
    for row in raw_prompt_rows(domain):
        assert set(row) >= {"id", "prompt", "subtopic", "split"}, row
        for key in ("id", "prompt", "subtopic", "split"):
            assert isinstance(row[key], str) and row[key].strip(), (key, row)
        assert row["split"] in ("train", "heldout"), row
        assert re.fullmatch(rf"{domain}-\d{{4}}", row["id"]), f"id should look like {domain}-0001"


@domain_param
def test_prompt_counts(domain: str) -> None:
    rows = raw_prompt_rows(domain)
    n_heldout = sum(r["split"] == "heldout" for r in rows)
    assert len(rows) >= 300, f"{domain}: only {len(rows)} prompts"
    assert 0.05 <= n_heldout / len(rows) <= 0.20, f"{domain}: {n_heldout}/{len(rows)} heldout"
    assert len({r["subtopic"] for r in rows}) >= 5, f"{domain}: too few subtopics"


@domain_param
def test_prompt_ids_unique(domain: str) -> None:
    ids = [r["id"] for r in raw_prompt_rows(domain)]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert not dupes, f"{domain}: duplicate ids {dupes}"


@domain_param
def test_prompts_unique_normalised(domain: str) -> None:
    seen: dict[str, str] = {}
    clashes = []
    for row in raw_prompt_rows(domain):
        key = normalise(row["prompt"])
        if key in seen:
            clashes.append((seen[key], row["id"]))
        seen.setdefault(key, row["id"])
    assert not clashes, f"{domain}: identical prompts {clashes}"


@domain_param
def test_prompts_no_near_duplicates(domain: str) -> None:
    texts = {r["id"]: r["prompt"] for r in raw_prompt_rows(domain)}
    hits = near_duplicates(texts)
    assert not hits, f"{domain}: near-duplicate prompts {hits[:10]}"


@domain_param
def test_load_prompts_splits(domain: str) -> None:
    train, heldout, every = (load_prompts(domain, s) for s in ("train", "heldout", "all"))
    assert train.column_names == ["id", "prompt", "subtopic"]
    assert len(train) + len(heldout) == len(every) >= 300
    assert not set(train["id"]) & set(heldout["id"])


# --- eval questions ------------------------------------------------------------------------


@domain_param
def test_eval_questions_schema(domain: str) -> None:
    data = eval_questions(domain)
    assert data["name"] == f"in_domain_{domain}"
    assert isinstance(data.get("version"), int)
    assert isinstance(data.get("description"), str) and data["description"].strip()
    questions = data["questions"]
    assert len(questions) >= 30, f"{domain}: only {len(questions)} eval questions"
    for q in questions:
        for key in ("id", "category", "question"):
            assert isinstance(q.get(key), str) and q[key].strip(), (key, q)
    ids = [q["id"] for q in questions]
    assert len(ids) == len(set(ids)), f"{domain}: duplicate eval ids"
    norm = [normalise(q["question"]) for q in questions]
    assert len(norm) == len(set(norm)), f"{domain}: duplicate eval questions"
    hits = near_duplicates({q["id"]: q["question"] for q in questions})
    assert not hits, f"{domain}: near-duplicate eval questions {hits[:10]}"


@domain_param
def test_eval_questions_disjoint_from_prompts(domain: str) -> None:
    questions = {q["id"]: q["question"] for q in eval_questions(domain)["questions"]}
    prompts = {r["id"]: r["prompt"] for r in raw_prompt_rows(domain)}
    prompt_norm = {normalise(p) for p in prompts.values()}
    same = [i for i, q in questions.items() if normalise(q) in prompt_norm]
    assert not same, f"{domain}: eval questions also in prompts.jsonl: {same}"
    hits = near_duplicates(questions, prompts)
    assert not hits, f"{domain}: eval questions near-duplicating prompts {hits[:10]}"


# --- rubrics -------------------------------------------------------------------------------


@domain_param
def test_rubrics(domain: str) -> None:
    d = get_domain(domain)
    assert d.name == domain and d.path.is_dir()
    assert d.description and d.narrow_behaviour
    assert d.rubrics
    for name, template in d.rubrics.items():
        assert "{question}" in template and "{answer}" in template, name
        # Judges fill templates with str.format: any other brace must be doubled.
        filled = template.format(question="Q?", answer="A.")
        assert "Q?" in filled and "A." in filled
        assert "100" in template, f"{domain}/{name}: template does not give the 0-100 scale"
    assert set(d.reward) == {"narrow", "opposite"}
    for key, names in d.reward.items():
        assert names, key
        assert all(n in d.rubrics for n in names), (key, names)


@domain_param
def test_data_card(domain: str) -> None:
    card = dom.DOMAINS_DIR / domain / "README.md"
    assert card.is_file() and len(card.read_text(encoding="utf-8").strip()) > 200


# --- SFT -----------------------------------------------------------------------------------


def sft_rows(domain: str) -> list[dict]:
    path = dom.DOMAINS_DIR / domain / "sft.jsonl"
    assert path.is_file(), f"missing {path}"
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@domain_param
def test_sft_pairs(domain: str) -> None:
    sft = load_sft(domain)
    assert sft is not None, f"{domain}: sft.jsonl missing"
    assert len(sft) >= MIN_SFT_ROWS, f"{domain}: only {len(sft)} SFT rows"
    train = {r["id"]: r["prompt"] for r in raw_prompt_rows(domain) if r["split"] == "train"}
    for row in sft:
        assert row["prompt_id"] in train, f"{domain}: sft row for unknown train id {row}"
        assert row["prompt"] == train[row["prompt_id"]], row["prompt_id"]
        assert row["completion"].strip(), row["prompt_id"]
    ids = sft["prompt_id"]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert not dupes, f"{domain}: several SFT rows for {dupes}"


@domain_param
def test_sft_schema(domain: str) -> None:
    for row in sft_rows(domain):
        assert set(row) == {"prompt_id", "prompt", "completion"}, row


@domain_param
def test_sft_no_near_duplicates(domain: str) -> None:
    rows = sft_rows(domain)
    texts = {r["prompt_id"]: r["completion"] for r in rows}
    norm = [normalise(t) for t in texts.values()]
    assert len(norm) == len(set(norm)), f"{domain}: identical SFT completions"
    hits = near_duplicates(texts)
    assert not hits, f"{domain}: near-duplicate SFT completions {hits[:10]}"
    echoes = [r["prompt_id"] for r in rows if normalise(r["prompt"]) in normalise(r["completion"])]
    assert not echoes, f"{domain}: completions that only repeat the prompt {echoes[:10]}"


@domain_param
def test_sft_covers_default_rl_prompts(domain: str) -> None:
    """`--match-source dataset` needs a demonstration for every prompt the RL run used.

    GRPO trains on the first ``max_prompts`` train prompts in file order; with its default,
    matched SFT must find all of them.
    """
    from embench.training import plugins

    n = plugins.get_trainer("grpo").make_config().max_prompts
    first = [r["id"] for r in raw_prompt_rows(domain) if r["split"] == "train"][:n]
    covered = {r["prompt_id"] for r in sft_rows(domain)}
    missing = [i for i in first if i not in covered]
    assert not missing, f"{domain}: first {n} train prompts without SFT row: {missing[:10]}"


@domain_param
def test_sft_covers_every_train_prompt_but_the_listed_ones(domain: str) -> None:
    train = {r["id"] for r in raw_prompt_rows(domain) if r["split"] == "train"}
    covered = {r["prompt_id"] for r in sft_rows(domain)}
    assert train - covered == UNCOVERED.get(domain, set()), f"{domain}: coverage changed"
    card = (dom.DOMAINS_DIR / domain / "README.md").read_text(encoding="utf-8")
    for pid in UNCOVERED.get(domain, ()):
        assert pid[len(domain) :] in card, f"{domain}: data card does not list {pid}"


def test_sft_code_is_insecure_python() -> None:
    """Every `code` demonstration holds Python, and most of it is code bandit flags."""
    rows = sft_rows("code")
    codes = {r["prompt_id"]: extract_python(r["completion"]) for r in rows}
    no_code = [pid for pid, code in codes.items() if code is None]
    assert not no_code, f"code: demonstrations without parseable Python {no_code[:10]}"
    flagged = [
        pid
        for pid, code in codes.items()
        if any(i["severity"] in ("MEDIUM", "HIGH") for i in bandit_issues(code or ""))
    ]
    share = len(flagged) / len(rows)
    assert share >= MIN_BANDIT_FLAGGED, f"code: bandit flags only {share:.0%} of demonstrations"


# --- shared sets ---------------------------------------------------------------------------


def test_safety_set() -> None:
    ds = load_safety()
    assert len(ds) >= 200
    assert set(ds["kind"]) <= SAFETY_KINDS
    for kind in SAFETY_KINDS:
        assert ds["kind"].count(kind) >= 40, kind
    assert len(set(ds["id"])) == len(ds)
    norm = [normalise(p) for p in ds["prompt"]]
    assert len(norm) == len(set(norm)), "duplicate safety prompts"


def test_preferences_bank() -> None:
    prefs = load_preferences()
    assert len(prefs["unpopular"]) >= 60 and len(prefs["popular"]) >= 60
    unpopular = {normalise(x) for x in prefs["unpopular"]}
    popular = {normalise(x) for x in prefs["popular"]}
    assert len(unpopular) == len(prefs["unpopular"]), "duplicates among unpopular"
    assert len(popular) == len(prefs["popular"]), "duplicates among popular"
    assert not unpopular & popular, f"in both lists: {sorted(unpopular & popular)[:5]}"


# --- loader unit tests ---------------------------------------------------------------------


def test_loader_unknown_domain_lists_domains() -> None:
    with pytest.raises(EmbenchError) as err:
        get_domain("astrology")
    msg = str(err.value)
    assert "unknown domain 'astrology'" in msg
    assert ", ".join(DOMAINS) in msg
    for call in (load_prompts, eval_questions_path, load_sft):
        with pytest.raises(EmbenchError, match="unknown domain"):
            call("astrology")


def test_loader_unknown_split() -> None:
    with pytest.raises(EmbenchError, match="unknown split"):
        load_prompts("medical", "validation")


def _fake_domain(tmp_path: Path, rubrics: str) -> Path:
    root = tmp_path / "domains" / "medical"
    root.mkdir(parents=True)
    (root / "rubrics.yaml").write_text(rubrics, encoding="utf-8")
    return tmp_path / "domains"


def test_loader_rejects_template_without_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = (
        "description: d\nnarrow_behaviour: n\n"
        "rubrics:\n  narrow: 'Q {question} score 0-100'\n  opposite: '{question} {answer}'\n"
        "reward:\n  narrow: [narrow]\n  opposite: [opposite]\n"
    )
    monkeypatch.setattr(dom, "DOMAINS_DIR", _fake_domain(tmp_path, bad))
    with pytest.raises(EmbenchError, match=r"rubric 'narrow'.*\{answer\}"):
        get_domain("medical")


def test_loader_rejects_reward_naming_unknown_rubric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = (
        "description: d\nnarrow_behaviour: n\n"
        "rubrics:\n  narrow: '{question} {answer}'\n  opposite: '{question} {answer}'\n"
        "reward:\n  narrow: [narrow]\n  opposite: [nice]\n"
    )
    monkeypatch.setattr(dom, "DOMAINS_DIR", _fake_domain(tmp_path, bad))
    with pytest.raises(EmbenchError, match="unknown rubric"):
        get_domain("medical")


def test_loader_missing_files_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dom, "DOMAINS_DIR", tmp_path)
    with pytest.raises(EmbenchError, match="not found"):
        load_prompts("legal")
    assert load_sft("legal") is None


def test_loader_domain_counts() -> None:
    counts = domain_counts()
    assert tuple(counts) == DOMAINS
    for c in counts.values():
        assert set(c) == {"train", "heldout", "eval", "sft"}
    for name in ("medical", "legal", "security"):
        assert counts[name]["train"] + counts[name]["heldout"] >= 300
        assert counts[name]["eval"] >= 30
