"""What a visitor leaves in the server's memory is bounded (issue 14: RSS grew by 170-195 MB
per 100 requests, never released). The RSS itself is measured by scripts/app_memory.py."""

from __future__ import annotations

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from app.lab import Lab
from app.limits import AppLimits
from app.memory import return_freed_memory, trim
from tests.app.conftest import serve


def test_sessions_kept_by_gradio_and_by_the_app_are_bounded(engine):
    """Every API client is a session; Gradio kept state for 10,000 of them by default, each
    with a copy of its last outputs (an inspection's figures: ~1.6 MB of JSON)."""
    lab = Lab.open(engine, AppLimits(max_sessions=3, kept_outputs=2, client_share=1.0))
    demo, url = serve(lab)
    clients = []
    try:
        for number in range(6):
            client = Client(url, verbose=False)
            clients.append(client)  # still open: only the caps bound what is kept
            client.predict(api_name="/store_stats")  # a session that holds nothing
            if number < 3:
                client.predict(f"text {number}", "t", api_name="/compile_text")
            else:  # the lab is full: a newcomer is refused, nobody is dropped
                with pytest.raises(AppError, match="the lab is full"):
                    client.predict(f"text {number}", "t", api_name="/compile_text")
        assert len(demo.state_holder.session_data) <= 2, "Gradio's copies over kept_outputs"
        assert len(lab.libraries.sessions()) == 3, "libraries over max_sessions"
        assert len(engine.store) == len(lab.example_titles) + 3
    finally:
        for client in clients:
            client.close()
        demo.close()


def test_a_visitor_whose_outputs_gradio_dropped_goes_on_as_before(engine):
    """Gradio's copy of a session (its updated chunk pickers included) is dropped once
    kept_outputs newer sessions came; the app keeps the library, and its calls still work."""
    lab = Lab.open(engine, AppLimits(kept_outputs=1))
    demo, url = serve(lab)
    first, second = Client(url, verbose=False), Client(url, verbose=False)
    try:
        key = first.predict("A visitor's own text.", "mine", api_name="/compile_text")[1][0]["key"]
        session = first.session_hash
        second.predict("Another visitor's text.", "theirs", api_name="/compile_text")
        assert session not in demo.state_holder.session_data, "the first copy should be gone"
        assert key in lab.libraries.visible(session)
        table = first.predict("p", [key], "What is it?", ["naive"], 0, 0.15, 2,
                              api_name="/run_compare")[0]
        assert [row[0] for row in table["data"]] == ["naive"], table
        assert key in [row[6] for row in first.predict(api_name="/store_stats")[0]["data"]]
    finally:
        first.close()
        second.close()
        demo.close()


def test_freed_memory_goes_back_to_the_system():
    assert return_freed_memory()  # glibc here: the allocator's options were accepted
    trim()
