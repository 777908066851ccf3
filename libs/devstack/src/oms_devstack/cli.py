"""``python -m oms_devstack``: run, stop, status, check, sign, token.

Failures the launcher understands (port taken, no database, a service that will not start)
are printed as their message, without a traceback: the message says what to do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from oms_devstack import check
from oms_devstack.banner import render
from oms_devstack.config import StackConfig
from oms_devstack.control import is_running, live_processes, stop_recorded
from oms_devstack.errors import DevstackError
from oms_devstack.ports import port_accepts
from oms_devstack.seed import demo_secret, seed_demo
from oms_devstack.service import http_client, is_ready
from oms_devstack.signing import SIGNATURE_HEADER, signature
from oms_devstack.specs import ServiceSpec
from oms_devstack.stack import Stack
from oms_devstack.state import StackState, state_path
from oms_devstack.tokens import (
    ALL_ROLES,
    DEFAULT_TTL_S,
    SEED_ROLES,
    jwt_service_env,
    key_path,
    mint,
    parse_roles,
    service_token_env,
)

AUTH_MODES = ("dev", "jwt")


def _say(message: str) -> None:
    print(message, flush=True)


def _check_modules(specs: Sequence[ServiceSpec], root: Path) -> None:
    """Fail in one line when a service package is not installed, before starting anything."""
    sys.path.insert(0, str(root))  # ``python -m`` in the services' working directory sees it
    try:
        missing = [s.module for s in specs if importlib.util.find_spec(s.module) is None]
    finally:
        sys.path.remove(str(root))
    if missing:
        raise DevstackError(
            f"service module(s) not installed: {', '.join(missing)}; install them into this "
            "environment (pip install --no-deps -e services/<name>) and try again"
        )


def _check_not_running(root: Path) -> None:
    state = StackState.load(state_path(root))
    if state is not None and is_running(state):
        raise DevstackError(
            f"a stack is already running (see {state_path(root)}); "
            "stop it with: python -m oms_devstack stop"
        )


def _auth_mode(flag: str | None) -> str:
    """``--auth``, else ``OMS_AUTH`` or ``AUTH`` (``make run AUTH=jwt``), else dev."""
    mode = flag or os.environ.get("OMS_AUTH") or os.environ.get("AUTH") or "dev"
    if mode not in AUTH_MODES:
        raise DevstackError(f"unknown auth mode {mode!r}; use one of {', '.join(AUTH_MODES)}")
    return mode


async def _seed(stack: Stack, token: str | None) -> None:
    """Seed demo data; a failure is reported but leaves the (still useful) stack running."""
    names = stack.names
    if "inventory-svc" not in names or "channel-gateway" not in names:
        return
    try:
        report = await seed_demo(
            stack.url("inventory-svc"),
            stack.url("channel-gateway"),
            customers_url=stack.url("customer-svc") if "customer-svc" in names else None,
            token=token,
        )
    except DevstackError as exc:
        _say(f"warning: {exc} (the stack runs without complete demo data)")
        return
    _say(report.summary())


async def _run(root: Path, detach: bool, seed: bool, auth: str) -> int:
    config = StackConfig.from_env(root, detach=detach)
    seed_token: str | None = None
    if auth == "jwt":
        # The services trust only the demo key under .oms/; the seed gets its own token.
        config.common_env.update(jwt_service_env(root))
        for name, env in service_token_env(root).items():
            config.service_env.setdefault(name, {}).update(env)
        seed_token = mint(root, "demo-seed", SEED_ROLES, ttl_s=3600)
    else:
        config.common_env["AUTH_MODE"] = "dev"  # whatever the shell says
    _check_not_running(root)
    stack = Stack(config)
    stack.check_ports_free()
    _check_modules(config.services, root)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    if not detach:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)

    _say("starting PostgreSQL (if needed), broker and services...")
    starting = asyncio.create_task(stack.start())
    waiting = asyncio.create_task(stopping.wait())
    await asyncio.wait({starting, waiting}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():  # Ctrl-C during start-up: start() cleans up on cancellation
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, DevstackError):
            await starting
        _say("interrupted; everything started so far was stopped")
        return 130
    waiting.cancel()
    starting.result()  # re-raises a start-up failure (the stack is already stopped then)

    if seed:
        await _seed(stack, seed_token)
    state = StackState.of(stack)
    state.save(state_path(root))
    secret = demo_secret()
    _say(_auth_banner(auth, root))
    if detach:
        _say(
            render(
                state,
                root,
                secret=secret,
                stop_hint="Stop with: make stop   (or: python -m oms_devstack stop)",
                auth=auth,
            )
        )
        return 0

    _say(
        render(state, root, secret=secret, stop_hint="Press Ctrl-C to stop everything.", auth=auth)
    )
    try:
        await _watch(stack, stopping)
    finally:
        _say("stopping...")
        await stack.stop()
        current = StackState.load(state_path(root))
        if current is not None and current.launcher_pid == state.launcher_pid:
            state_path(root).unlink(missing_ok=True)
        _say("stopped.")
    return 0


async def _watch(stack: Stack, stopping: asyncio.Event) -> None:
    """Wait for Ctrl-C/SIGTERM, reporting (once) any service that dies meanwhile."""
    reported: set[str] = set()
    while not stopping.is_set():
        for name in stack.names:
            if name not in reported and not stack.is_running(name):
                reported.add(name)
                _say(f"{name} exited; see {stack.log_path(name)}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=1.0)


def _stop(root: Path) -> int:
    if not state_path(root).exists():
        _say("no stack is running (no .oms/stack.json)")
        return 0
    done = stop_recorded(root)
    _say(
        "; ".join(done) + "." if done else "no stack was running (removed a stale .oms/stack.json)"
    )
    return 0


async def _status(root: Path) -> int:
    state = StackState.load(state_path(root))
    if state is not None:
        targets = [(s.name, s.url, s.url + s.ready_path) for s in state.services]
        bootstrap = state.kafka_bootstrap
        alive = live_processes(state)
        _say(f"stack recorded in {state_path(root)} ({len(alive)} process(es) alive)")
    else:
        config = StackConfig.from_env(root)
        stack = Stack(config)
        targets = [(n, stack.url(n), stack.url(n) + stack.spec(n).ready_path) for n in stack.names]
        bootstrap = stack.kafka_bootstrap
        _say("no .oms/stack.json; checking the default ports")
    async with http_client(timeout=2.0) as client:
        ready = await asyncio.gather(*(is_ready(client, url) for _, _, url in targets))
    width = max(len(name) for name, _, _ in targets)
    for (name, url, _), ok in zip(targets, ready, strict=True):
        _say(f"  {name:<{width}}  {url}  {'ready' if ok else 'NOT READY'}")
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    broker_ok = await asyncio.to_thread(port_accepts, int(port), host)
    _say(f"  {'broker':<{width}}  {bootstrap}  {'listening' if broker_ok else 'NOT LISTENING'}")
    return 0 if all(ready) and broker_ok else 1


async def _check(root: Path, grace_s: float | None) -> int:
    lines, code = check.render(await check.fetch(root, grace_s))
    for line in lines:
        _say(line)
    return code


def _auth_banner(auth: str, root: Path) -> str:
    if auth == "jwt":
        return (
            f"AUTH_MODE=jwt: the services trust the demo key {key_path(root)}. Mint a token:\n"
            "  python -m oms_devstack token --sub alice --roles orders:write,orders:read\n"
            "  (a partner: --sub partner-web --roles '' --channel web)\n"
            "  and send it as 'Authorization: Bearer <token>'."
        )
    return (
        "!!! AUTH_MODE=dev: the services trust the X-Operator header as the caller and grant "
        "it EVERY role. Local development only. For tokens: make run AUTH=jwt"
    )


def _token(root: Path, subject: str, roles: str, ttl_s: int, channel: str | None) -> int:
    print(mint(root, subject, parse_roles(roles), ttl_s=ttl_s, channel=channel), flush=True)
    return 0


def _sign(channel: str, secret: str, body_path: str, timestamp: int | None) -> int:
    body = sys.stdin.buffer.read() if body_path == "-" else Path(body_path).read_bytes()
    _say(f"{SIGNATURE_HEADER}: {signature(secret, body, timestamp)}")
    print(
        f"(post the file byte for byte, e.g. curl --data-binary @{body_path} "
        f"http://127.0.0.1:8004/webhooks/{channel}; sign again after 5 minutes)",
        file=sys.stderr,
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m oms_devstack", description="Run the OMS stack locally."
    )
    parser.add_argument(
        "--root", type=Path, default=Path.cwd(), help="repo root; .oms/ lives here (default: .)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start PostgreSQL (if needed), broker, services; seed demo")
    run.add_argument("--detach", action="store_true", help="run in the background and exit")
    run.add_argument("--no-seed", action="store_true", help="skip the demo data")
    run.add_argument(
        "--auth",
        choices=AUTH_MODES,
        default=None,
        help="dev (X-Operator, every role) or jwt (demo tokens); default: $AUTH or dev",
    )
    sub.add_parser("stop", help="stop the stack recorded in .oms/stack.json")
    sub.add_parser("status", help="readiness of each service and the broker")
    consistency = sub.add_parser(
        "check",
        help="do orders and stock reservations agree? (exit 1 when they do not)",
    )
    consistency.add_argument(
        "--grace-s",
        type=float,
        default=None,
        help="ignore changes younger than this (default: order-svc's setting, 30 s)",
    )
    sign = sub.add_parser("sign", help=f"print the {SIGNATURE_HEADER} header for a body")
    sign.add_argument("--channel", default="web", help="channel name (for the hint only)")
    sign.add_argument("--secret", default=None, help="channel secret (default: demo secret)")
    sign.add_argument("--body", required=True, help="file with the raw body, or - for stdin")
    sign.add_argument("--timestamp", type=int, default=None, help="unix seconds (default: now)")
    token = sub.add_parser("token", help="print a demo JWT signed by the key under .oms/")
    token.add_argument("--sub", required=True, help="the subject (who the caller is)")
    token.add_argument(
        "--roles",
        default=",".join(ALL_ROLES),
        help="comma-separated roles (default: all of them)",
    )
    token.add_argument(
        "--ttl", type=int, default=DEFAULT_TTL_S, help="seconds of validity (default: 8 h)"
    )
    token.add_argument(
        "--channel",
        default=None,
        help="a partner's token: the one channel whose orders it may read "
        "(GET /channels/{c}/orders); use with --roles ''",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    root: Path = args.root.absolute()
    try:
        if args.command == "run":
            return asyncio.run(_run(root, args.detach, not args.no_seed, _auth_mode(args.auth)))
        if args.command == "stop":
            return _stop(root)
        if args.command == "status":
            return asyncio.run(_status(root))
        if args.command == "check":
            return asyncio.run(_check(root, args.grace_s))
        if args.command == "token":
            return _token(root, args.sub, args.roles, args.ttl, args.channel)
        return _sign(args.channel, args.secret or demo_secret(), args.body, args.timestamp)
    except DevstackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
