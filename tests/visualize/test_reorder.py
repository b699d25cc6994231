"""A run that linked the chunks in another order (infoflow) is shown as such: its mask row and
its notes name the order, each position's hover names its chunk as composed."""

from __future__ import annotations

import pytest

from app import notes
from tests.engine.link.test_infoflow import MORE
from tests.engine.link.test_querylink import PREFIX, QUESTION
from visualize.mask import recompute_mask_strip


@pytest.fixture()
def runs(tiny4_engine):
    keys = [tiny4_engine.compile(d) for d in MORE]
    full = tiny4_engine.run(PREFIX, keys, QUESTION, "full_recompute", max_new_tokens=1)
    for k in (2, 4, 6, 8):
        r = tiny4_engine.run(PREFIX, keys, QUESTION, "infoflow", recompute_k=k, max_new_tokens=1)
        if r.layout.reordered_from(full.layout):
            return full, r
    pytest.fail("no budget reordered this prompt (test_infoflow shows one does)")


def test_the_mask_row_and_hover_of_a_reordered_run(tiny4_engine, runs):
    full, moved = runs
    order = moved.layout.order_in(full.layout)
    tokens = [tiny4_engine.tokenizer.decode([t]) for t in full.layout.token_ids]
    fig = recompute_mask_strip([full, moved], tokens)
    names = list(fig.layout.yaxis.ticktext)
    assert names[0] == "full_recompute"
    assert names[1] == f"{moved.algorithm} (reordered: {' '.join(f'C{n}' for n in order)})"
    heat = fig.data[0]
    first = moved.layout.chunks[0]  # linked first: composed as chunk order[0]
    assert f"chunk {order[0]}:" in heat.customdata[1][first.start][1], "hover names it as composed"
    composed = full.layout.chunks[order[0] - 1]
    assert heat.customdata[1][first.start][0] == heat.customdata[0][composed.start][0], \
        "the token shown at a moved position is the one linked there"


def test_the_notes_say_which_order_and_against_what_it_is_measured(tiny4_engine, runs):
    full, moved = runs
    lines = notes.for_results(tiny4_engine, [full, moved])
    order = ", ".join(f"C{n}" for n in moved.layout.order_in(full.layout))
    assert any(f"**{moved.algorithm} reordered the chunks**: it linked them as {order}" in line
               and "the prompt as composed" in line for line in lines), lines
    assert not notes.reorderings([full, full]), "a run in the composed order says nothing"
