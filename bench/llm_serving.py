"""How the embedded model server serves: concurrency, prompt reuse, JSON schemas, a busy machine.

The embedded server (`python -m aimesh llm`) runs as its own process, as `aimesh up` runs it,
and is called through the `ollama` client the agents use. Its peer is the same model file called
in-process through llama-cpp-python's `Llama.create_chat_completion` with every core, which is
how the server answered before batching. Sides never run at the same time.

Figures, each the median of ROUNDS runs:
- single stream, tokens/s over the whole call: in-process against HTTP (target: HTTP at least
  0.95 of in-process);
- 1, 2 and 4 concurrent requests through HTTP, all tokens over the wall time (target: 4 at least
  1.8x of 1);
- a JSON-schema answer against a free answer of the same prompt, decode tokens/s as the server
  reports them (target: at least 0.8);
- prompt evaluation of a long shared system prompt, cold and then with a new question after it;
- single stream beside a bounded busy loop on one core, against quiet (target: at least 0.4).
Run from the repo root: `python bench/llm_serving.py [--rounds N] [--model NAME]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import ollama

from aimesh.embedded.llm import start_embedded_llm
from aimesh.embedded.processes import stop
from aimesh.llm.catalog import lookup
from aimesh.llm.model_store import model_file
from aimesh.settings import Settings

TOKENS = 128
LONG_ANSWER = (
    "Explain in detail, step by step, how merge sort works, then write it in Python with "
    "comments on every line, then explain its time and space complexity."
)
REVIEW_SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
        "strengths": {"type": "array", "items": {"type": "string"}},
        "weaknesses": {"type": "array", "items": {"type": "string"}},
        "critique": {"type": "string"},
    },
    "required": ["score", "strengths", "weaknesses", "critique"],
}
REVIEW_PROMPT = (
    "Review this Python function in detail: its correctness, style, edge cases and speed. "
    "Answer as JSON with score, strengths, weaknesses and critique.\n\n"
    "def dedupe(items):\n    out = []\n    for x in items:\n        if x not in out:\n"
    "            out.append(x)\n    return out\n"
)
SYSTEM = (
    "You are a senior Python engineer. You write small, correct, well-tested functions. "
    "Rules you always follow: "
    + " ".join(f"Rule {i}: keep functions short and named for what they do." for i in range(1, 41))
)
QUESTIONS = ["Write is_even(n).", "Write reverse(s).", "Write clamp(x, lo, hi).", "Write mean(xs)."]
BUSY_SECONDS = 600.0


def median(values: list[float]) -> float:
    return statistics.median(values)


def chat_messages(text: str, system: str | None = None) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": text}
    ]


# ---------------------------------------------------------------- in-process peer


def in_process_single(path: Path, rounds: int) -> dict[str, float]:
    """Whole-call tokens/s of a free answer and a schema answer, and a cold prompt's evaluation
    in ms, through llama-cpp-python in this process."""
    from llama_cpp import Llama, llama_perf_context, llama_perf_context_reset

    llm = Llama(model_path=str(path), n_ctx=4096, n_threads=os.cpu_count(), verbose=False)

    def whole_call(text: str, seed: int, **extra: Any) -> float:
        start = time.perf_counter()
        out = llm.create_chat_completion(
            messages=chat_messages(text), max_tokens=TOKENS, temperature=0.2, seed=seed, **extra
        )
        return out["usage"]["completion_tokens"] / (time.perf_counter() - start)

    schema = {"type": "json_object", "schema": REVIEW_SCHEMA}
    figures = {
        "free": median([whole_call(LONG_ANSWER, r) for r in range(rounds)]),
        "review free": median([whole_call(REVIEW_PROMPT, r) for r in range(rounds)]),
        "review schema": median(
            [whole_call(REVIEW_PROMPT, r, response_format=schema) for r in range(rounds)]
        ),
    }
    llm.reset()
    llama_perf_context_reset(llm.ctx)
    llm.create_chat_completion(messages=chat_messages(QUESTIONS[0], SYSTEM), max_tokens=1)
    figures["cold prompt ms"] = llama_perf_context(llm.ctx).t_p_eval_ms
    llm.close()
    return figures


# ---------------------------------------------------------------- the server, over HTTP


async def call(
    client: ollama.AsyncClient,
    model: str,
    messages: list[dict[str, str]],
    *,
    seed: int,
    schema: dict[str, Any] | None = None,
    tokens: int = TOKENS,
) -> Any:
    return await client.chat(
        model=model,
        messages=messages,
        format=schema,
        options={"num_predict": tokens, "temperature": 0.2, "seed": seed},
    )


async def timed(fn: Callable[[], Awaitable[list[Any]]]) -> float:
    """All generated tokens over the wall time of `fn`."""
    start = time.perf_counter()
    answers = await fn()
    return sum(a.eval_count for a in answers) / (time.perf_counter() - start)


async def concurrent(
    client: ollama.AsyncClient, model: str, n: int, seed: int, tokens: int = TOKENS
) -> float:
    async def run() -> list[Any]:
        calls = [
            call(
                client,
                model,
                chat_messages(LONG_ANSWER + f" (variant {i})"),
                seed=seed + i,
                tokens=tokens,
            )
            for i in range(n)
        ]
        return list(await asyncio.gather(*calls))

    return await timed(run)


def decode_speed(answer: Any) -> float:
    return answer.eval_count / (answer.eval_duration / 1e9)


async def schema_against_free(
    client: ollama.AsyncClient, model: str, rounds: int
) -> tuple[float, float]:
    free, constrained = [], []
    for round_ in range(rounds):
        free.append(
            decode_speed(await call(client, model, chat_messages(REVIEW_PROMPT), seed=round_))
        )
        answer = await call(
            client, model, chat_messages(REVIEW_PROMPT), seed=round_, schema=REVIEW_SCHEMA
        )
        constrained.append(decode_speed(answer))
    return median(free), median(constrained)


async def shared_prefix(client: ollama.AsyncClient, model: str) -> list[tuple[str, int, float]]:
    """(label, prompt tokens, prompt evaluation ms): a cold system prompt, then new questions."""
    rows = []
    for i, question in enumerate(QUESTIONS):
        answer = await call(client, model, chat_messages(question, SYSTEM), seed=i, tokens=16)
        label = "cold (prompt never seen)" if i == 0 else f"same system prompt, question {i + 1}"
        rows.append((label, answer.prompt_eval_count, answer.prompt_eval_duration / 1e6))
    return rows


def busy_loop(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


async def beside_a_busy_core(
    client: ollama.AsyncClient, model: str, rounds: int, tokens: int = TOKENS
) -> float:
    busy = multiprocessing.Process(target=busy_loop, args=(BUSY_SECONDS,), daemon=True)
    busy.start()
    try:
        await asyncio.sleep(1.0)  # the server sees the neighbour before it decodes
        speeds = [await concurrent(client, model, 1, 500 + r, tokens) for r in range(rounds)]
        return median(speeds)
    finally:
        busy.terminate()
        busy.join()


async def pinned_threads(host: str, model: str, tokens: int) -> tuple[float, float]:
    """(quiet, busy) single-stream tokens/s with the thread count pinned to every core."""
    client = ollama.AsyncClient(host=host, timeout=1800)
    await call(client, model, chat_messages("Say hi."), seed=0, tokens=4)
    quiet = await concurrent(client, model, 1, 700, tokens)
    return quiet, await beside_a_busy_core(client, model, 1, tokens)


async def serving(host: str, model: str, rounds: int) -> dict[str, Any]:
    client = ollama.AsyncClient(host=host, timeout=900)
    await call(client, model, chat_messages("Say hi."), seed=0, tokens=4)  # load the model
    figures: dict[str, Any] = {}
    for n in (1, 2, 4):
        figures[f"x{n}"] = median(
            [await concurrent(client, model, n, 10 * r) for r in range(rounds)]
        )
    figures["free"], figures["schema"] = await schema_against_free(client, model, rounds)
    figures["prefix"] = await shared_prefix(client, model)
    figures["busy"] = await beside_a_busy_core(client, model, rounds)
    return figures


def server(threads: int | None) -> tuple[Any, str]:
    log = Path(tempfile.mkdtemp(prefix="aimesh-llm-bench-")) / "llm.log"
    if threads:
        os.environ["AIMESH_LLM_THREADS"] = str(threads)
    else:
        os.environ.pop("AIMESH_LLM_THREADS", None)
    return start_embedded_llm(log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="qwen2.5-coder:0.5b")
    parser.add_argument(
        "--pinned",
        action="store_true",
        help="also run a server pinned to every core beside the busy loop (the old default; "
        "slow: 32 tokens, one round)",
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    path = model_file(lookup(args.model), Settings.from_env().models_dir)
    print(f"model {args.model}, {TOKENS} tokens per answer, {os.cpu_count()} cores, "
          f"median of {args.rounds} rounds", flush=True)  # fmt: skip

    peer = in_process_single(path, args.rounds)
    inproc = peer["free"]
    process, host = server(None)
    try:
        figures = asyncio.run(serving(host, args.model, args.rounds))
    finally:
        stop(process)

    single = figures["x1"]
    print("\nsingle stream, tokens/s over the whole call")
    print(f"  in-process llama-cpp-python {inproc:8.2f}")
    print(
        f"  embedded server over HTTP   {single:8.2f}   ratio {single / inproc:.3f} (target 0.95)"
    )
    print("\nconcurrent requests through HTTP, all tokens / wall time")
    for n in (1, 2, 4):
        rate = figures[f"x{n}"]
        print(f"  {n} at once {rate:8.2f} tokens/s   {rate / single:.2f}x of one")
    print("  target: 4 at once at least 1.8x of one")
    free, schema = figures["free"], figures["schema"]
    print("\nJSON-schema answer against a free answer, decode tokens/s")
    print(f"  free {free:8.2f}   schema {schema:8.2f}   ratio {schema / free:.3f} (target 0.8)")
    print(f"  in-process llama-cpp-python, whole call: free {peer['review free']:8.2f}   "
          f"schema {peer['review schema']:8.2f}   "
          f"ratio {peer['review schema'] / peer['review free']:.3f}")  # fmt: skip
    print("\nprompt evaluation with a shared system prompt")
    for label, count, ms in figures["prefix"]:
        print(f"  {label:36s} {count:5d} prompt tokens {ms:9.1f} ms")
    print(f"  in-process llama-cpp-python, cold    {peer['cold prompt ms']:29.1f} ms")
    busy = figures["busy"]
    print("\nsingle stream beside a busy loop on one core")
    print(f"  quiet {single:8.2f}   busy {busy:8.2f}   ratio {busy / single:.3f} (target 0.4)")
    if args.pinned:
        process, host = server(os.cpu_count())
        try:
            quiet, busy = asyncio.run(pinned_threads(host, args.model, 32))
        finally:
            stop(process)
        print(f"  pinned to {os.cpu_count()} threads, 32 tokens: quiet {quiet:8.2f}   "
              f"busy {busy:8.2f}   ratio {busy / quiet:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
