"""The batching engine with a real small model (smollm2 135M): several requests share decodes,
a cached prompt prefix is not evaluated again, and a grammar still binds every answer."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aimesh.llm.backends import LlamaChat, chat_formatter, json_grammar
from aimesh.llm.batch_engine import BatchEngine, Generated, common_prefix
from aimesh.llm.catalog import lookup
from aimesh.llm.core_share import CoreShare
from aimesh.llm.model_store import model_file

MODEL = "smollm2:135m"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_file(lookup(MODEL), tmp_path_factory.mktemp("models"))


def new_engine(path: Path, slots: int = 3) -> BatchEngine:
    return BatchEngine(path, slots=slots, n_ctx=1024, share=CoreShare(fixed=1))


@pytest.fixture(scope="module")
def engine(model_path: Path) -> Iterator[BatchEngine]:
    engine = new_engine(model_path)
    yield engine
    engine.close()


def prompt(engine: BatchEngine, question: str, system: str = "You are brief.") -> list[int]:
    text = chat_formatter(engine.model)(
        messages=[{"role": "system", "content": system}, {"role": "user", "content": question}]
    ).prompt
    return list(engine.model.tokenize(text.encode(), add_bos=False, special=True))


def greedy(engine: BatchEngine, tokens: list[int], n: int = 12, **extra: object) -> Generated:
    options: dict = {"max_tokens": n, "temperature": 0.0, "seed": 1, "grammar": None}
    options.update(extra)
    return engine.submit(tokens, **options).result(timeout=120)


def text(engine: BatchEngine, done: Generated) -> str:
    return engine.model.detokenize(done.tokens).decode("utf-8", errors="replace")


QUESTIONS = ["Name a colour.", "Count to five.", "What is 2 + 2?"]


def test_concurrent_requests_share_decodes_and_answer_as_they_would_alone(
    model_path: Path,
) -> None:
    engine = new_engine(model_path)
    try:
        alone = [greedy(engine, prompt(engine, q)) for q in QUESTIONS]
        assert engine.widest_step == 1
        fresh = new_engine(model_path)
        try:
            futures = [
                fresh.submit(prompt(fresh, q), max_tokens=12, temperature=0.0, seed=1, grammar=None)
                for q in QUESTIONS
            ]
            together = [future.result(timeout=120) for future in futures]
            assert fresh.widest_step == len(QUESTIONS)
        finally:
            fresh.close()
    finally:
        engine.close()
    assert [d.tokens for d in together] == [d.tokens for d in alone]
    head = common_prefix(prompt(engine, QUESTIONS[0]), prompt(engine, QUESTIONS[1]))
    assert together[0].reused_tokens == 0
    for done in together:
        assert done.reused_tokens <= head  # at most the system prompt, from a slot beside it
        assert len(done.tokens) <= 12 and done.done_reason in ("stop", "length")


def test_a_cached_prefix_is_not_evaluated_again(engine: BatchEngine) -> None:
    system = "You answer questions about Python in one short sentence. " * 8
    first = greedy(engine, prompt(engine, QUESTIONS[0], system))
    same = greedy(engine, prompt(engine, QUESTIONS[0], system))
    other_tokens = prompt(engine, QUESTIONS[1], system)
    other = greedy(engine, other_tokens)
    assert first.reused_tokens < 10
    assert same.reused_tokens == same.prompt_tokens - 1  # the last token gives the logits
    assert same.tokens == first.tokens
    shared = 0
    first_tokens = prompt(engine, QUESTIONS[0], system)
    while first_tokens[shared] == other_tokens[shared]:
        shared += 1
    assert other.reused_tokens == shared > 60
    assert other.prompt_tokens == len(other_tokens)


def test_a_busy_slots_cached_head_is_shared_with_a_new_request(model_path: Path) -> None:
    engine = new_engine(model_path, slots=2)
    try:
        system = "You answer questions about Python in one short sentence. " * 8
        first_tokens = prompt(engine, "Write a long story about lists.", system)
        second_tokens = prompt(engine, QUESTIONS[1], system)
        first = engine.submit(first_tokens, max_tokens=80, temperature=0.0, seed=1, grammar=None)
        for _ in range(600):
            if engine.widest_step:  # the first is generating: its prompt is in the cache
                break
            time.sleep(0.01)
        second = greedy(engine, second_tokens)
        assert not first.done(), "the second request ran beside the first"
        alone = new_engine(model_path, slots=1)
        try:
            alone_answer = greedy(alone, second_tokens)
        finally:
            alone.close()
        shared = common_prefix(first_tokens, second_tokens)
        assert second.reused_tokens == shared > 60
        assert second.tokens == alone_answer.tokens
        first.result(timeout=120)
    finally:
        engine.close()


def test_max_tokens_stops_with_length_and_the_end_token_with_stop(engine: BatchEngine) -> None:
    short = greedy(engine, prompt(engine, "Write a long poem about the sea."), n=5)
    assert (len(short.tokens), short.done_reason) == (5, "length")
    whole = greedy(engine, prompt(engine, "Say yes."), n=200)
    assert whole.done_reason == "stop" and len(whole.tokens) < 200


def test_a_schema_binds_the_answer_while_a_free_answer_decodes_beside_it(
    engine: BatchEngine,
) -> None:
    schema = {
        "type": "object",
        "properties": {"colour": {"type": "string"}, "count": {"type": "integer"}},
        "required": ["colour", "count"],
    }
    bound = engine.submit(
        prompt(engine, "Give a colour and a number as JSON."),
        max_tokens=60,
        temperature=0.7,
        seed=3,
        grammar=json_grammar(schema, json_mode=False),
    )
    free = engine.submit(
        prompt(engine, "Tell me about colours."),
        max_tokens=40,
        temperature=0.7,
        seed=3,
        grammar=None,
    )
    answer = json.loads(text(engine, bound.result(timeout=120)))
    assert set(answer) == {"colour", "count"} and isinstance(answer["count"], int)
    assert free.result(timeout=120).tokens


def test_a_grammar_the_model_would_never_choose_still_binds(engine: BatchEngine) -> None:
    """The free draw breaks this grammar at once, so the vocabulary-wide path picks the token."""
    done = greedy(engine, prompt(engine, "Say hello."), n=20, grammar='root ::= "zqx" [0-9] "!"')
    assert text(engine, done) in {f"zqx{d}!" for d in range(10)}
    assert done.done_reason == "stop"


def test_a_refused_request_says_why_and_the_engine_keeps_serving(engine: BatchEngine) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        engine.submit([1] * 2000, max_tokens=1, temperature=0.0, seed=None, grammar=None)
    with pytest.raises(ValueError, match="empty prompt"):
        engine.submit([], max_tokens=1, temperature=0.0, seed=None, grammar=None)
    broken = engine.submit(
        prompt(engine, "hi"), max_tokens=4, temperature=0.0, seed=None, grammar="root ::= ("
    )
    with pytest.raises(ValueError, match="grammar"):
        broken.result(timeout=60)
    assert greedy(engine, prompt(engine, "Say yes."), n=3).tokens


def test_closing_fails_the_requests_still_queued(model_path: Path) -> None:
    engine = new_engine(model_path, slots=1)
    long = engine.submit(
        prompt(engine, "Write a long story."), max_tokens=300, temperature=0.0, seed=1, grammar=None
    )
    queued = engine.submit(
        prompt(engine, "Say yes."), max_tokens=3, temperature=0.0, seed=1, grammar=None
    )
    threading.Timer(0.5, engine.close).start()
    with pytest.raises(RuntimeError, match="stopping"):
        queued.result(timeout=120)
    with pytest.raises(RuntimeError, match="stopping"):
        long.result(timeout=120)
    with pytest.raises(RuntimeError, match="stopping"):
        engine.submit(prompt(engine, "hi"), max_tokens=1, temperature=0.0, seed=1, grammar=None)


def test_a_request_cancelled_while_it_waits_is_skipped(model_path: Path) -> None:
    engine = new_engine(model_path, slots=1)
    try:
        first = engine.submit(
            prompt(engine, "Count to twenty."), max_tokens=40, temperature=0.0, seed=1, grammar=None
        )
        waiting = engine.submit(
            prompt(engine, "Say yes."), max_tokens=3, temperature=0.0, seed=1, grammar=None
        )
        assert waiting.cancel()
        after = engine.submit(
            prompt(engine, "Say no."), max_tokens=3, temperature=0.0, seed=1, grammar=None
        )
        assert first.result(timeout=120).tokens
        assert after.result(timeout=120).tokens
        assert waiting.cancelled()
    finally:
        engine.close()


def test_the_chat_backend_reports_ollama_counts(model_path: Path) -> None:
    chat = LlamaChat(lookup(MODEL), model_path.parent, n_ctx=1024, n_threads=1, parallel=2)
    try:
        messages = [{"role": "user", "content": "Name a fruit."}]
        done = chat.complete(
            messages, schema=None, json_mode=False, max_tokens=6, temperature=0.0, seed=2
        )
        again = chat.complete(
            messages, schema=None, json_mode=False, max_tokens=6, temperature=0.0, seed=2
        )
    finally:
        chat.close()
    assert done.load_ns > 0 and again.load_ns == 0
    assert done.prompt_tokens == again.prompt_tokens > 5
    assert (done.completion_tokens, done.done_reason) == (6, "length")
    assert again.text == done.text and done.eval_ns > 0 and done.prompt_eval_ns > 0
