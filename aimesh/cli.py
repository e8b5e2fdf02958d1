"""The `aimesh` command: `up` runs the whole mesh; `broker`, `llm` and `worker` run one part each;
`pull` installs a model for the embedded LLM server.

`aimesh up` starts only what is missing (the embedded broker when AIMESH_BROKER_URL is unset, the
embedded LLM server when no Ollama answers), runs one Faust worker with every agent and the web
server, prints progress, and stops everything it started on Ctrl-C or after --max-cycles.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aimesh.sandbox.pool import PoolConfig
from aimesh.settings import EMBEDDED_EMBED_MODEL, ConfigError, Settings, first_host_port
from aimesh.stream.broker_profile import EMBEDDED_TANSU, BrokerProfile, detect

if TYPE_CHECKING:
    from aimesh.archive import CycleArchive


LOOP_VARIABLES = ("FAUST_LOOP", "F_LOOP")
"""Faust's own settings for the event loop; either names the loop a worker runs on."""


def worker_event_loop() -> str:
    """The event loop a worker runs on: FAUST_LOOP/F_LOOP when set, else uvloop where installed.

    A worker is one event loop, busy with many small messages: under bench/mesh_throughput.py
    uvloop lowered its CPU per cycle and raised cycles/s by about a tenth each.
    """
    for variable in LOOP_VARIABLES:
        if os.environ.get(variable):
            return os.environ[variable]
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "aio"


def _worker_command(log_level: str = "info") -> list[str]:
    faust = [sys.executable, "-m", "faust", "-L", worker_event_loop(), "-A", "aimesh.app"]
    return [*faust, "worker", "-l", log_level]


class Mesh:
    """The processes `aimesh up` started, stopped in reverse order."""

    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def add(self, name: str, process: subprocess.Popen[bytes]) -> None:
        self.processes.append((name, process))

    def stop(self) -> None:
        from aimesh.embedded.processes import stop

        for _, process in reversed(self.processes):
            stop(process, timeout=30)

    def dead(self) -> str | None:
        for name, process in self.processes:
            if process.poll() is not None:
                return f"{name} exited with status {process.returncode}"
        return None


def _env_for_up(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    if args.tasks:
        env["AIMESH_TASKS"] = args.tasks
    if args.web_port:
        env["AIMESH_WEB_PORT"] = str(args.web_port)
    if args.max_cycles and not env.get("AIMESH_MAX_TASKS"):
        env["AIMESH_MAX_TASKS"] = str(args.max_cycles)
    env.setdefault("AIMESH_RUN_ID", time.strftime("%Y%m%d%H%M%S"))
    return env


def with_embedded_fix_model(env: dict[str, str]) -> dict[str, str]:
    """On the embedded server with the default chat model, fixes go to the 1.5B unless
    AIMESH_FIX_MODEL is set (set empty, fixes stay with the chat model): the 0.5B repairs almost
    nothing of its own (catalog.DEFAULT_FIX_MODEL). Ollama users choose their own models."""
    from aimesh.llm.catalog import DEFAULT_CHAT_MODEL, DEFAULT_FIX_MODEL

    if env.get("AIMESH_CHAT_MODEL", DEFAULT_CHAT_MODEL) == DEFAULT_CHAT_MODEL:
        env.setdefault("AIMESH_FIX_MODEL", DEFAULT_FIX_MODEL)
    return env


def _progress(archive: CycleArchive, baseline: int) -> tuple[int, int, int]:
    """Cycles finished since `baseline` rows: all, passed, gave up (read again only on change)."""
    new = archive.cycles.read().iloc[baseline:]
    passed = int((new["outcome"] == "passed").sum())
    return len(new), passed, len(new) - passed


class Stopped(Exception):
    """SIGINT or SIGTERM arrived: stop what was started, then exit."""


def _stop_on_signals() -> None:
    """Ctrl-C and a supervisor's SIGTERM both end in the same clean stop (even when the shell
    that started us made SIGINT ignored, as it does for background jobs)."""

    def stop(signum: int, _frame: object) -> None:
        raise Stopped(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def startup_refusal(settings: Settings, profile: BrokerProfile | None) -> str:
    """Why a worker with `settings` must not start, or "": the sandbox cannot run here, or the
    broker (`profile`; None when not known yet) cannot do what is asked. `aimesh up` and
    `aimesh worker` both check this before anything starts, print it and exit 2."""
    if refusal := sandbox_refusal(settings.sandbox_pool_config()):
        return refusal
    try:
        if profile is not None:
            profile.faust_options(settings)
    except ConfigError as exc:
        return str(exc)
    return ""


def sandbox_refusal(config: PoolConfig) -> str:
    """Why this machine cannot run the sandbox with `config`, or "" when it can: checked before
    a worker starts, so a missing isolation layer stops start-up instead of every run."""
    import asyncio

    from aimesh.sandbox import SandboxUnavailable, ServerPool, active_layers

    servers = ServerPool(config)
    try:
        asyncio.run(active_layers(servers))
    except SandboxUnavailable as exc:
        return str(exc)
    finally:
        servers.close()
    return ""


def up(args: argparse.Namespace) -> int:
    """Start what is missing, run the worker, report progress; 0 once --max-cycles finished."""
    from aimesh.archive import CycleArchive
    from aimesh.embedded.broker import start_tansu
    from aimesh.embedded.llm import find_ollama, start_embedded_llm
    from aimesh.embedded.processes import port_is_free

    env = _env_for_up(args)
    settings = Settings.from_env(env)
    if not port_is_free(settings.web_host, settings.web_port):
        print(
            f"aimesh: {settings.web_host}:{settings.web_port} is in use; choose another port "
            "with --web-port or AIMESH_WEB_PORT",
            file=sys.stderr,
        )
        return 1
    # Without a broker URL the broker will be the embedded Tansu: can it do what's asked?
    profile = None if settings.broker_url else EMBEDDED_TANSU
    if refusal := startup_refusal(settings, profile):
        print(f"aimesh: {refusal}", file=sys.stderr)
        return 2
    host = find_ollama(settings.ollama_host)
    if host is None:
        settings = Settings.from_env(with_embedded_fix_model(env))
        if problem := prepare_chat_models(settings):
            print(f"aimesh: {problem}", file=sys.stderr)
            return 2
    _stop_on_signals()
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    mesh = Mesh()
    embedded = []
    try:
        if not settings.broker_url:
            broker, url = start_tansu()
            mesh.add("broker", broker)
            env["AIMESH_BROKER_URL"] = url
            embedded.append("broker")
            print(f"broker: embedded Tansu at {url}", flush=True)
        else:
            print(f"broker: {settings.broker_url}", flush=True)
        if host is None:
            fixes = f", fixes by {settings.fix_model}" if settings.fix_model else ""
            print(
                "llm: no Ollama answers; starting the embedded server "
                f"({settings.chat_model}{fixes})",
                flush=True,
            )
            server, host = start_embedded_llm(logs / "llm.log")
            mesh.add("llm", server)
            embedded.append("llm")
            env.setdefault("AIMESH_EMBED_MODEL", EMBEDDED_EMBED_MODEL)
        env["OLLAMA_HOST"] = host
        env["AIMESH_EMBEDDED"] = ",".join(embedded)
        print(f"llm: {host}", flush=True)
        archive = CycleArchive(settings.tables_dir)
        baseline = _progress(archive, 0)[0]
        with open(logs / "worker.log", "ab") as log:
            worker = subprocess.Popen(
                _worker_command(), env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        mesh.add("worker", worker)
        print(
            f"worker: running (log {logs / 'worker.log'}); "
            f"dashboard http://{settings.web_host}:{settings.web_port}/",
            flush=True,
        )
        return _watch(mesh, settings, archive, baseline, args.max_cycles)
    except Stopped as stopped:
        print(f"\nstopping ({stopped})", flush=True)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        mesh.stop()


def _watch(
    mesh: Mesh, settings: Settings, archive: CycleArchive, baseline: int, max_cycles: int | None
) -> int:
    shown = None
    while True:
        finished, passed, gave_up = _progress(archive, baseline)
        if (finished, passed, gave_up) != shown:
            target = f"/{max_cycles}" if max_cycles else ""
            print(
                f"cycles finished {finished}{target} (passed {passed}, gave up {gave_up})",
                flush=True,
            )
            shown = (finished, passed, gave_up)
        if max_cycles and finished >= max_cycles:
            return 0
        problem = mesh.dead()
        if problem:
            print(f"error: {problem}; see {settings.data_dir / 'logs'}", file=sys.stderr)
            return 1
        time.sleep(1.0)


def broker(args: argparse.Namespace) -> int:
    """Run the embedded broker in the foreground (the Procfile's `broker`).

    The process becomes Tansu itself, so every signal a process manager sends reaches it.
    """
    from aimesh.embedded.broker import tansu_command

    command = tansu_command(args.host, args.port)
    print(f"embedded Tansu broker at kafka://{args.host}:{args.port}", flush=True)
    os.execv(command[0], command)


def llm(args: argparse.Namespace) -> int:
    """Run the embedded Ollama-compatible server in the foreground (the Procfile's `llm`)."""
    from aimesh.llm.server import main as serve

    settings = Settings.from_env()
    threads = settings.llm_threads
    serve(
        ["--host", args.host, "--port", str(args.port), "--models-dir", str(settings.models_dir)]
        + ["--parallel", str(settings.llm_parallel)]
        + (["--threads", str(threads)] if threads else [])
    )
    return 0


def pull(args: argparse.Namespace) -> int:
    """Install a model's pinned packages (pip shows its progress), then join and check its file."""
    import asyncio

    from aimesh.llm.pull import pull_events

    async def show() -> int:
        shown = set()
        async for event in pull_events(args.model, Settings.from_env().models_dir, quiet_pip=False):
            if "error" in event:
                print(f"aimesh pull: {event['error']}", file=sys.stderr)
                return 2 if event["error"].startswith("unknown model") else 1
            line = event["status"]
            if "total" in event:
                percent = event["completed"] * 100 // event["total"]
                line += f": {percent}% of {event['total']:,} bytes"
            if "path" in event:
                line += f" ({event['path']})"
            if line not in shown:
                shown.add(line)
                print(line, flush=True)
        return 0

    return asyncio.run(show())


def report(args: argparse.Namespace) -> int:
    """Print the learning figures of the archive in AIMESH_TABLES_DIR (or --tables)."""
    from pathlib import Path

    from aimesh.archive.report import report as lines

    settings = Settings.from_env()
    tables = Path(args.tables) if args.tables else settings.tables_dir
    if not (tables / "attempts.csv").is_file():
        print(f"aimesh report: no archive in {tables} (no attempts.csv)", file=sys.stderr)
        return 2
    print("\n".join(lines(tables, settings.max_fixes)))
    return 0


def export(args: argparse.Namespace) -> int:
    """Write the archive's trustworthy solutions as datasets (aimesh.archive.export); exit 2,
    writing nothing, when the archive cannot give what was asked for."""
    import time
    from pathlib import Path

    from aimesh.archive.dataset import Selection
    from aimesh.archive.dataset_card import card
    from aimesh.archive.export import FORMATS, ExportError, check, planned, read, write

    if args.format not in FORMATS:
        known = ", ".join(FORMATS)
        print(f"aimesh export: --format: unknown format {args.format!r} ({known})", file=sys.stderr)
        return 2
    tables = Path(args.tables) if args.tables else Settings.from_env().tables_dir
    selection = Selection(
        min_score=args.min_score,
        sources=frozenset(args.source or ()),
        models=frozenset(args.model or ()),
        since=args.since,
        until=args.until,
        include_benchmarks=args.include_benchmarks,
        any_verdict_mode=args.any_verdict_mode,
    )
    try:
        dataset = read(tables, selection)
        check(dataset, args.format)
    except ExportError as exc:
        print(f"aimesh export: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    files = planned(out, args.format)
    text = card(dataset, selection, tables, files, time.time())
    write(out, dataset, args.format, text)
    for name, records in dataset.records.items():
        print(f"{name}: {len(records)} records, {dataset.duplicates[name]} duplicates dropped")
    for why, count in dataset.left_out.most_common():
        print(f"left out by {why}: {count} passing cycle(s)")
    print(f"wrote {', '.join(str(f) for f in files)}")
    return 0


def prepare_chat_models(settings: Settings) -> str:
    """Join and check the embedded server's chat model before anything starts; '' or why it
    cannot run. Joining and hashing it (half a gigabyte for the default) happens once, not on
    the first request, and a missing or altered package is named before anything else starts."""
    from aimesh.llm.catalog import UnknownModel, lookup
    from aimesh.llm.model_store import ModelError, model_file

    wanted = [("AIMESH_CHAT_MODEL", settings.chat_model), ("AIMESH_FIX_MODEL", settings.fix_model)]
    for setting, name in wanted:
        if not name:
            continue
        try:
            spec = lookup(name)
            print(f"llm: checking {spec.name} against its pinned sha256", flush=True)
            model_file(spec, settings.models_dir)
        except (UnknownModel, ModelError) as exc:
            return f"{setting}: {exc}"
    return ""


def worker(args: argparse.Namespace) -> int:
    """One Faust worker with every agent: how replicas scale (`faust -A aimesh.app worker`).

    Waits for the broker to listen first, so `honcho start` may start all parts at once.
    """
    from aimesh.embedded.processes import wait_for_port

    settings = Settings.from_env()
    url = settings.broker
    host, port = first_host_port(url)
    if not wait_for_port(host, port, timeout=args.wait):
        print(f"aimesh: no broker listens at {url} (AIMESH_BROKER_URL)", file=sys.stderr)
        return 1
    if refusal := startup_refusal(settings, detect(settings)):
        print(f"aimesh: {refusal}", file=sys.stderr)
        return 2
    command = _worker_command(args.log_level)
    os.execv(command[0], command)


def sandbox(args: argparse.Namespace) -> int:
    """Judge one program against a test file in the sandbox; print the verdict as one JSON object
    (its `mode` says how it was judged); exit 0 only when it passed (2 when the sandbox cannot
    run). The tests run in a process of their own unless --same-process asks otherwise."""
    import asyncio
    import json
    from pathlib import Path

    from aimesh.sandbox import (
        SandboxUnavailable,
        build_program,
        configure,
        run_program,
        run_tests,
    )

    settings = Settings.from_env()
    code = Path(args.code_file).read_text(encoding="utf-8")
    tests = Path(args.test).read_text(encoding="utf-8") if args.test else ""
    preamble = Path(args.preamble).read_text(encoding="utf-8") if args.preamble else ""
    limits = settings.sandbox_limits
    if args.timeout is not None:
        limits = limits.with_overrides({"timeout_s": args.timeout})
    configure(settings.sandbox_pool_config())
    try:
        if args.same_process:
            program = build_program(code, tests, args.entry_point, preamble)
            result = asyncio.run(run_program(program, limits))
        else:
            result = asyncio.run(run_tests(code, tests, args.entry_point, preamble, limits))
    except SandboxUnavailable as exc:
        print(f"aimesh sandbox: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_dict()))
    return 0 if result.passed else 1


def _identifier(text: str) -> str:
    if not text.isidentifier():
        raise argparse.ArgumentTypeError(f"not a Python identifier: {text!r}")
    return text


def _score(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"not a review score from 0 to 1: {text!r}")
    return value


def _moment(text: str) -> float:
    """An ISO 8601 date or time (UTC unless it says otherwise), as seconds since the epoch."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aimesh",
        description="LLM agents over Kafka that write, test, review and archive Python code.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("up", help="run the whole mesh, starting whatever is missing")
    run.add_argument("--max-cycles", type=int, help="exit 0 once N cycles have finished")
    run.add_argument("--tasks", help="a JSONL task file (own or HumanEval format)")
    run.add_argument("--web-port", type=int, help="port of the dashboard and JSON views")
    run.set_defaults(handler=up)
    b = commands.add_parser("broker", help="run the embedded Kafka-protocol broker (Tansu)")
    b.add_argument("--host", default="127.0.0.1")
    b.add_argument("--port", type=int, default=9092)
    b.set_defaults(handler=broker)
    s = commands.add_parser("llm", help="run the embedded Ollama-compatible LLM server")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=11434)
    s.set_defaults(handler=llm)
    r = commands.add_parser("report", help="print the learning figures of a run's archive")
    r.add_argument("--tables", help="the archive's folder (default: AIMESH_TABLES_DIR)")
    r.set_defaults(handler=report)
    p = commands.add_parser("pull", help="install a model for the embedded LLM server")
    p.add_argument("model", help="e.g. qwen2.5-coder:0.5b, qwen2.5-coder:1.5b, smollm2:135m")
    p.set_defaults(handler=pull)
    x = commands.add_parser("sandbox", help="run one program in the sandbox; print its verdict")
    x.add_argument("code_file", help="the program")
    x.add_argument("--test", help="a test file; it calls the program's functions")
    x.add_argument("--preamble", help="the task's own code, run before the program and the tests")
    x.add_argument(
        "--entry-point", type=_identifier, help="the function HumanEval-style check() is given"
    )
    x.add_argument(
        "--same-process",
        action="store_true",
        help="run program and tests in one process: UNSAFE for verdicts, the program can fake one",
    )
    x.add_argument("--timeout", type=float, help="wall-clock seconds (AIMESH_SANDBOX_TIMEOUT)")
    x.set_defaults(handler=sandbox)
    e = commands.add_parser("export", help="write the archive's verified solutions as datasets")
    e.add_argument("--out", required=True, help="the folder to write into")
    e.add_argument(
        "--format",
        default="sft",
        help="sft (chat JSONL, the default), flat (prompt/completion JSONL), repair, preference, "
        "parquet (all four as Parquet) or all",
    )
    e.add_argument("--tables", help="the archive's folder (default: AIMESH_TABLES_DIR)")
    e.add_argument("--min-score", type=_score, help="only solutions reviewed at least this well")
    e.add_argument("--source", action="append", help="only tasks from this source (repeatable)")
    e.add_argument("--model", action="append", help="only code from this model (repeatable)")
    e.add_argument("--since", type=_moment, help="only cycles finished at or after (ISO 8601)")
    e.add_argument("--until", type=_moment, help="only cycles finished before (ISO 8601)")
    e.add_argument(
        "--include-benchmarks",
        action="store_true",
        help="keep benchmark tasks (HumanEval), left out so nobody trains on a test set",
    )
    e.add_argument(
        "--any-verdict-mode",
        action="store_true",
        help="also passes judged in the same-process mode, which a program can fake (UNSAFE)",
    )
    e.set_defaults(handler=export)
    w = commands.add_parser("worker", help="run one Faust worker against the configured broker")
    w.add_argument("-l", "--log-level", default="info")
    w.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the broker")
    w.set_defaults(handler=worker)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = args.handler(args)
    except ConfigError as exc:
        print(f"aimesh: configuration error: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)
