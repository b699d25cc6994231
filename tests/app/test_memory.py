"""What a visitor leaves in the server's memory is bounded (issue 14: RSS grew by 170-195 MB
per 100 requests, never released). The RSS itself is measured by scripts/app_memory.py."""

from __future__ import annotations

from gradio_client import Client

from app.lab import Lab
from app.limits import AppLimits
from app.memory import return_freed_memory, trim
from tests.app.conftest import serve


def test_sessions_kept_by_gradio_and_by_the_app_are_bounded(engine):
    """Every API client is a session; Gradio kept state for 10,000 of them by default."""
    lab = Lab.open(engine, AppLimits(max_sessions=3))
    demo, url = serve(lab)
    clients = []
    try:
        for number in range(6):
            client = Client(url, verbose=False)
            client.predict(f"text {number}", "t", api_name="/compile_text")
            clients.append(client)  # still open: only the cap can release them
        assert len(demo.state_holder.session_data) <= 3
        assert len(lab.libraries.sessions()) <= 3
        assert len(engine.store) == len(lab.example_keys) + 3  # released visitors' chunks went
    finally:
        for client in clients:
            client.close()
        demo.close()


def test_freed_memory_goes_back_to_the_system():
    assert return_freed_memory()  # glibc here: the allocator's options were accepted
    trim()
