"""Eight gradio_client users at once against one app on the tiny model (issue 6): no errors,
every answer equal to the same request run alone, no chunk compiled twice, hits add up; each
user's chunks are its own, a text they all upload too (issue 19: one copy for all told each
of them that the others had compiled it)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client

from app.lab import Lab
from app.limits import AppLimits
from tests.app.conftest import DOC_A, serve

USERS = 8
ALGORITHMS = ["full_recompute", "naive", "legolink"]
READERS = 2  # naive and legolink read the chunks; full_recompute does not


def user(url: str, number: int) -> dict:
    """Five requests: compile a shared and an own document, compose twice, inspect once."""
    client = Client(url, verbose=False)
    own_text = f"User {number} keeps {number * 7} boats in harbour {number}."
    shared = client.predict(DOC_A, "shared", api_name="/compile_text")[1][0]["key"]
    own = client.predict(own_text, f"user {number}", api_name="/compile_text")[1][0]["key"]
    requests = [(f"Prefix {number}.", [shared, own]), ("Other prefix.", [own, shared])]
    answers = []
    for index, (prefix, keys) in enumerate(requests):
        *_, report = client.predict(prefix, keys, "Who?", ALGORITHMS, 4, 0.2, 4,
                                    api_name="/run_compare")
        answers.append((prefix, keys, {r["algorithm"]: (r["text"], r["mask"])
                                       for r in report["results"]}))
        if index == 0:
            client.predict(prefix, keys[::-1], "Who?", ["naive", "legolink"], 4, 0.2, 0, True,
                           0, True, "minmax", 3, api_name="/inspect")
    rows = client.predict(api_name="/store_stats")[0]["data"]
    return {"shared": shared, "own": own, "answers": answers, "client": client,
            "mine": {row[6] for row in rows if row[1] == "you"}}


@pytest.mark.slow
def test_eight_users_at_once(engine):
    lab = Lab.open(engine, AppLimits())
    demo, url = serve(lab)
    try:
        with ThreadPoolExecutor(USERS) as pool:
            outcomes = list(pool.map(lambda n: user(url, n), range(USERS)))
        stats = engine.store.stats()
        # Every answer and mask equals the same request run alone, afterwards (while the
        # visitors' libraries still hold their chunks: a library released forgets them).
        alone = {(prefix, tuple(keys), algorithm): engine.run(
                     prefix, keys, "Who?", algorithm, recompute_k=4, recompute_ratio=0.2,
                     max_new_tokens=4)
                 for outcome in outcomes for prefix, keys, _ in outcome["answers"]
                 for algorithm in ALGORITHMS}
    finally:
        demo.close()
    # Two chunks per user, each compiled exactly once; each user sees its own.
    assert len({o["shared"] for o in outcomes}) == USERS
    assert stats.num_compiled == 2 * USERS
    assert stats.num_chunks == 2 * USERS + len(lab.example_titles)
    assert all(o["mine"] == {o["shared"], o["own"]} for o in outcomes)
    # Each user: 2 compares and 1 inspect, each read by naive and legolink.
    hits = {c.key: c.hits for c in stats.chunks}
    assert all(hits[o["shared"]] == hits[o["own"]] == 3 * READERS for o in outcomes)
    for outcome in outcomes:
        for prefix, keys, got in outcome["answers"]:
            for algorithm in ALGORITHMS:
                run = alone[(prefix, tuple(keys), algorithm)]
                assert got[run.algorithm] == (run.text, "".join(str(m) for m in run.mask))
