"""The app's explanations come from the declarations they explain: the algorithms' table (the
README holds the same one) and the glossary's knobs."""

from __future__ import annotations

from pathlib import Path

from app import notes
from engine import algorithm, algorithm_names, parameters

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_lists_the_algorithms_as_their_classes_declare_them():
    table = notes.algorithms_markdown()
    assert table in README.read_text(encoding="utf-8"), (
        "README.md's algorithm table differs from notes.algorithms_markdown(): paste it again")
    rows = table.splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == list(algorithm_names())
    legolink = rows[algorithm_names().index("legolink")]
    assert legolink.split(" | ")[1:] == ["k (0..1024, default 16)", algorithm("legolink").summary,
                                         algorithm("legolink").paper + " |"]


def test_the_glossary_explains_every_knob():
    glossary = notes.glossary()
    for p in parameters():
        assert f"- **{p.name}** (" in glossary and p.help in glossary, p.name
