"""Every route through one queue (issue 19), as a hostile client tries it over raw HTTP and
gradio_client against the app on the tiny model: the queue's cap holds under concurrent joins,
the direct routes run no model work or redraw beside the queue, redraws have a lane of their
own, and a call over the bounds is refused before it takes a place in the queue.

The model is held still by taking the engine's own lock: an admitted call waits inside it, so
nothing frees a place while the joins arrive, and nothing here depends on timing."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError

from app import inspector
from app.lab import Lab
from app.limits import AppLimits
from app.sessions import Libraries
from tests.app.conftest import DOC_A, serve

JOINS = 120


@contextmanager
def served(lab: Lab):
    demo, url = serve(lab)
    try:
        yield demo, url
    finally:
        demo.close()


@contextmanager
def model_held(lab: Lab):
    """The engine's lock taken: an admitted model call waits inside the engine."""
    lab.engine._lock.acquire()
    try:
        yield
    finally:
        lab.engine._lock.release()


def fn_index(demo, name: str) -> int:
    """The event id of an endpoint (api name) or of a handler (function name)."""
    return next(fn._id for fn in demo.fns.values()
                if fn.api_name == name or getattr(fn.fn, "__name__", None) == name)


def join(url: str, index: int, data: list, session: str | None = None) -> httpx.Response:
    body = {"data": data, "fn_index": index, "session_hash": session or uuid.uuid4().hex,
            "event_data": None, "trigger_id": None}
    return httpx.post(f"{url}gradio_api/queue/join", json=body, timeout=60)


def test_concurrent_joins_never_pass_the_queue_cap(engine):
    """120 concurrent joins with fresh session hashes were accepted up to 100 against a cap
    of 32: Gradio checks its queue's size before it awaits the validator."""
    lab = Lab.open(engine, AppLimits(queue_size=4))
    before = engine.store.stats().num_compiled
    with served(lab) as (demo, url):
        with model_held(lab):
            index = fn_index(demo, "compile_text")
            with ThreadPoolExecutor(32) as pool:
                answers = list(pool.map(lambda n: join(url, index, [f"Text {n}.", ""]),
                                        range(JOINS)))
            accepted = [a for a in answers if a.status_code == 200]
            refused = [a for a in answers if a.status_code != 200]
            assert len(accepted) == lab.limits.queue_size, \
                f"{len(accepted)} joins accepted against a cap of {lab.limits.queue_size}"
            assert {a.status_code for a in refused} <= {422, 503}, \
                {a.status_code for a in refused}
            assert any("the model's queue is full (4 calls queued or running" in a.text
                       for a in refused)
        # The model freed: the admitted calls run, one by one, and give their places back.
        deadline = time.monotonic() + 60
        while engine.store.stats().num_compiled < before + 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert engine.store.stats().num_compiled == before + len(accepted), \
            "each admitted call ran once the model was free"


def test_direct_routes_run_no_model_call_beside_the_queue(engine):
    """`/gradio_api/run/compile_text` (open wherever the app is not a Space) ran four compiles
    of one visitor at once, beside the queue."""
    lab = Lab.open(engine, AppLimits())
    active, most = [0], [0]
    compile_document = engine.compile_document

    def counted(*args, **kwargs):  # the engine's own compile, counted while it runs
        active[0] += 1
        most[0] = max(most[0], active[0])
        try:
            return compile_document(*args, **kwargs)
        finally:
            active[0] -= 1

    engine.compile_document = counted
    before = engine.store.stats().num_compiled
    with served(lab) as (demo, url):
        body = lambda n: {"data": [f"{DOC_A} Copy {n}.", f"copy {n}"]}  # noqa: E731
        with ThreadPoolExecutor(4) as pool:
            runs = list(pool.map(lambda n: httpx.post(
                f"{url}gradio_api/run/compile_text", json=body(n), timeout=120), range(4)))
            by_index = list(pool.map(lambda n: httpx.post(
                f"{url}gradio_api/run/predict", timeout=120,
                json={**body(n), "fn_index": fn_index(demo, "compile_text")}), range(4)))
        assert [r.status_code for r in runs + by_index] == [404] * 8, \
            [(r.status_code, r.text[:80]) for r in runs + by_index]
        assert "join the queue" in runs[0].text
        # Opened anyway (a deployment that sets api_open), the handler refuses a call the
        # queue did not admit.
        demo.api_open = True
        opened = httpx.post(f"{url}gradio_api/run/compile_text", json=body(9), timeout=120)
        assert opened.status_code == 500 and "through the queue only" in opened.text
    assert most[0] == 0 and engine.store.stats().num_compiled == before, \
        "no compile ran outside the queue"


def test_every_model_call_and_redraw_runs_in_a_bounded_lane(engine):
    """Model steps in the model's lane (one at a time, validated when they join), redraws in
    their own lane; nothing else that runs the model or redraws may skip the queue."""
    from app.wiring import MODEL, REDRAW

    lab = Lab.open(engine, AppLimits(redraws=2))
    with served(lab) as (demo, _url):
        fns = list(demo.fns.values())
        model = [fn for fn in fns if fn.concurrency_id == MODEL]
        redraws = [fn for fn in fns if getattr(fn.fn, "__name__", "") == "render_attention"]
        assert len(model) >= 10 and all(fn.queue and fn.concurrency_limit == 1
                                        and fn.validator is not None for fn in model)
        assert len(redraws) == 6 and all(fn.queue and fn.concurrency_id == REDRAW
                                         and fn.concurrency_limit == 2 for fn in redraws)
        model_names = {fn.fn.__name__ for fn in model}
        unqueued = {getattr(fn.fn, "__name__", "") for fn in fns if not fn.queue}
        assert not unqueued & (model_names | {"render_attention"}), unqueued & model_names
        assert demo.api_open is False


def test_redraws_take_their_lane_on_every_route(engine):
    """The unqueued redraw (3 s of CPU and 2 MB per reply after a large inspection) ran with
    no concurrency limit: now /run refuses it and the queue draws one at a time."""
    lab = Lab.open(engine, AppLimits())
    session = uuid.uuid4().hex
    key = next(iter(lab.example_titles))
    inspector.inspect_attention(lab, session, "p", [key, key], "Who?", ["naive"], 4, 0.2, 0,
                                True, 0, True, "minmax", 4)
    active, most = [0], [0]
    view = inspector._view

    def counted(*args, **kwargs):  # the redraw's own drawing, counted while it runs
        active[0] += 1
        most[0] = max(most[0], active[0])
        try:
            time.sleep(0.2)  # a long redraw: others would overlap it if they could
            return view(*args, **kwargs)
        finally:
            active[0] -= 1

    inspector._view = counted
    try:
        with served(lab) as (demo, url):
            index = fn_index(demo, "render_attention")
            data = [0, True, 0, True, "softmax", 4]
            direct = httpx.post(f"{url}gradio_api/run/predict", timeout=60,
                                json={"data": data, "fn_index": index,
                                      "session_hash": session})
            assert direct.status_code == 404, direct.text[:200]
            with ThreadPoolExecutor(4) as pool:
                joined = list(pool.map(lambda _: join(url, index, data, session), range(4)))
            assert all(j.status_code == 200 for j in joined)
            deadline = time.monotonic() + 60
            with httpx.stream("GET", f"{url}gradio_api/queue/data",
                              params={"session_hash": session}, timeout=60) as stream:
                done = 0
                for line in stream.iter_lines():
                    done += '"process_completed"' in line
                    if done == 4 or time.monotonic() > deadline:
                        break
            assert done == 4
    finally:
        inspector._view = view
    assert most[0] == 1, f"{most[0]} redraws ran at once"


def test_a_call_over_the_bound_is_refused_before_the_queue(engine):
    """/run_compare with every algorithm, k = 1024 and 64 new tokens held the model 236 s:
    a call whose estimate is over the bound per call is refused with its estimate when it
    joins the queue, and never takes a place nor the model."""
    from app.budget import seconds_text
    from app.planning import estimate_compare

    lab = Lab.open(engine, AppLimits(max_call_s=1e-6))
    keys = list(lab.example_titles)[:2]
    args = ("p", keys, "Who?", ["full_recompute", "naive", "legolink"], 1024, 1.0, 8)
    estimate = estimate_compare(lab, "x", *args)
    with served(lab) as (_demo, url), model_held(lab):
        client = Client(url, verbose=False)
        job = client.submit(*args, api_name="/run_compare")
        with pytest.raises(ValidationError) as refused:
            job.result(timeout=30)
        assert len(lab.admission) == 0
    message = str(refused.value)
    assert f"this call would take about {seconds_text(estimate.seconds)} of model time" in \
        message and "3 runs of" in message and "choose fewer algorithms" in message, message


def test_a_ten_million_character_question_is_refused_unread(engine):
    """A question of 10 million characters was tokenized for 14 s inside the model slot
    before it was refused: it is refused by its length when it joins the queue."""
    lab = Lab.open(engine, AppLimits())
    before = engine.store.stats().num_compiled
    with served(lab) as (_demo, url), model_held(lab):
        client = Client(url, verbose=False)
        start = time.monotonic()
        with pytest.raises(ValidationError, match="the question has 10,000,000 characters, "
                                                  "over this app's limit of 32,768"):
            client.predict("p", list(lab.example_titles)[:1], "x" * 10_000_000, ["naive"], 4,
                           0.2, 4, api_name="/run_compare")
        took = time.monotonic() - start
        with pytest.raises(ValidationError, match="the pasted text has 10,000,000 characters"):
            client.predict("x" * 10_000_000, "t", api_name="/compile_text")
    assert engine.store.stats().num_compiled == before
    assert took < 10, f"{took:.1f} s to refuse it (sending 10 MB included)"


def test_admission_counts_every_visitor_under_one_cap(lab):
    from app.admission import Admission

    admission = Admission(AppLimits(queue_size=2), Libraries(lab.engine.store, AppLimits()),
                          lab.estimator)
    admission.admit("a")
    with pytest.raises(ValueError, match="you already have a model call queued or running"):
        admission.admit("a")
    admission.admit("b")
    with pytest.raises(ValueError, match=r"the model's queue is full \(2 calls queued or "
                                         "running"):
        admission.admit("c")
    with pytest.raises(ValueError, match="the model's queue is full"):
        admission.check()
    assert admission.holds("a") and not admission.holds("c")
    admission.done("a")  # a call ended
    admission.admit("c")
    admission.leave("b")  # a page closed: Gradio dropped its queued call
    admission.admit("d")
    assert len(admission) == 2


def test_the_speed_benchmark_schema_says_integer_lengths(engine):
    """The /bench_speed schema listed the lengths as strings, which the handler refused."""
    lab = Lab.open(engine, AppLimits())
    with served(lab) as (_demo, url):
        client = Client(url, verbose=False)
        api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        lengths = api["/bench_speed"]["parameters"][0]
        assert lengths["type"]["items"] == {"enum": [256, 512, 1024], "type": "integer"}
        _, table, summary, _ = client.predict([256], 1, ["naive"], 4, 0.2,
                                                       api_name="/bench_speed")
    assert table["data"] and "Medians of 1 repeat" in summary


def test_the_character_bounds_are_the_tables(engine, write):
    """The limits table states the character bounds; the API refuses one past them when the
    call joins the queue, and takes the text at the bound to the handler."""
    from app.ui_start import limits_table

    lab = Lab.open(engine, AppLimits(prompt_chars=300, compile_chars=400))
    assert ("| characters of a prefix or a question / of one compile call's text (checked "
            "before tokenizing) | 300 / 400 |") in limits_table(lab)
    with served(lab) as (_demo, url):
        client = Client(url, verbose=False)
        key = client.predict("y" * 400, "at the bound", api_name="/compile_text")[1][0]["key"]
        with pytest.raises(ValidationError, match="the pasted text has 401 characters, over "
                                                  "this app's limit of 400"):
            client.predict("y" * 401, "t", api_name="/compile_text")
        *_, report = client.predict("p" * 300, [key], "q" * 300, ["naive"], 4, 0.2, 1,
                                    api_name="/run_compare")
        assert report["results"][0]["algorithm"] == "naive"
        for prefix, question in (("p" * 301, "q"), ("p", "q" * 301)):
            with pytest.raises(ValidationError, match="has 301 characters, over this app's "
                                                      "limit of 300: shorten it"):
                client.predict(prefix, [key], question, ["naive"], 4, 0.2, 1,
                               api_name="/run_compare")
        with pytest.raises(ValidationError, match="the chunk key has 65 characters"):
            client.predict("p", ["k" * 65], "q", ["naive"], 4, 0.2, 1, api_name="/run_compare")
        # An upload of plain text whose bytes alone are over it is refused unread; one that
        # is over it once parsed is refused before anything tokenizes it.
        with pytest.raises(ValidationError, match="1,601 bytes of text in one call"):
            client.predict([handle_file(write("big.txt", "z" * 1601))],
                           api_name="/compile_files")
        with pytest.raises(AppError, match="401 characters of text in one call is over this "
                                           "app's limit of 400 per compile"):
            client.predict([handle_file(write("a.txt", "z" * 200)),
                            handle_file(write("b.md", "z" * 201))], api_name="/compile_files")


def test_a_client_that_closes_its_stream_gives_its_place_back(engine, monkeypatch):
    """Gradio drops the queued events of a client that closes the stream reading them: their
    places in the queue must not stay taken (32 such joins would shut the queue)."""
    monkeypatch.setenv("GRADIO_HEARTBEAT_INTERVAL", "0.2")  # disconnects noticed sooner
    lab = Lab.open(engine, AppLimits(queue_size=2))
    with served(lab) as (demo, url), model_held(lab):
        lab.admission.grace_s = 0.5
        index = fn_index(demo, "compile_text")
        running, leaving, later = (uuid.uuid4().hex for _ in range(3))
        assert join(url, index, ["Held by the model.", ""], running).status_code == 200
        assert join(url, index, ["Queued, then abandoned.", ""], leaving).status_code == 200
        refused = join(url, index, ["One too many.", ""], later)
        assert refused.status_code == 422 and "the model's queue is full" in refused.text
        with httpx.stream("GET", f"{url}gradio_api/queue/data",
                          params={"session_hash": leaving}, timeout=30) as stream:
            next(stream.iter_lines())  # connected; then the client goes away
        deadline = time.monotonic() + 30
        while len(lab.admission) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(lab.admission) == 1, "the abandoned call still holds its place"
        assert join(url, index, ["Now there is room.", ""], later).status_code == 200


def test_one_call_per_visitor_holds_for_one_input_endpoints(engine):
    """Gradio read a one-input validator's refusal as valid: a visitor queued any number of
    /story or /compile_files calls."""
    lab = Lab.open(engine, AppLimits())
    with served(lab) as (_demo, url):
        client = Client(url, verbose=False)
        with model_held(lab):
            first = client.submit("Who chairs the board?", api_name="/story")
            deadline = time.monotonic() + 30
            while not lab.admission.holds(client.session_hash) and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            for args, api_name in ((("Why?",), "/story"),
                                   (("Some text.", "t"), "/compile_text")):
                with pytest.raises(ValidationError, match="you already have a model call "
                                                          "queued or running"):
                    client.submit(*args, api_name=api_name).result(timeout=30)
        *_, summary = first.result(timeout=120)
        assert "Across the 4 requests" in summary
