"""The text `run` prints once the stack is up: where everything is and how to try it."""

from __future__ import annotations

from pathlib import Path

from oms_devstack.dburl import redacted
from oms_devstack.signing import demo_order, shell_webhook_example
from oms_devstack.state import StackState

_GATEWAY = "channel-gateway"
_ORDERS = "order-svc"
#: In jwt mode the read needs a token: the demo's own, minted on the spot.
_READER = (
    '-H "Authorization: Bearer '
    '$(.venv/bin/python -m oms_devstack token --sub you --roles orders:read)" '
)


def _shown(path: str, root: Path) -> str:
    """A path relative to the repo root when it is inside it (shorter, copy-pasteable)."""
    try:
        return str(Path(path).relative_to(root.absolute()))
    except ValueError:
        return path


def render(state: StackState, root: Path, *, secret: str, stop_hint: str, auth: str = "dev") -> str:
    """The banner for a started stack."""
    width = max(len(s.name) for s in state.services) if state.services else 0
    lines = ["OMS stack is up.", ""]
    for service in state.services:
        links = "  ".join(service.url + link for link in service.links)
        lines.append(f"  {service.name:<{width}}  {links}")
    lines.append("")
    if state.broker is not None:
        broker = f"{state.kafka_bootstrap} (tansu, in memory: topics are lost on restart)"
    else:
        broker = f"{state.kafka_bootstrap} (external, from KAFKA_BOOTSTRAP_SERVERS)"
    database = redacted(state.database_url)
    if state.private_postgres_data_dir:
        database += (
            f" (private PostgreSQL, data in {_shown(state.private_postgres_data_dir, root)})"
        )
    db_names = ", ".join(s.db_name for s in state.services)
    lines += [
        f"  broker    {broker}",
        f"  database  {database}",
        f"            databases: {db_names}",
        f"  logs      {_shown(state.log_dir, root)}/<service>.log",
        "",
    ]
    urls = {s.name: s.url for s in state.services}
    if _GATEWAY in urls:
        lines += [
            f'Try it: post a signed order to the "web" channel (secret "{secret}"):',
            "",
            shell_webhook_example(f"{urls[_GATEWAY]}/webhooks/web", secret, demo_order()),
            "",
        ]
        if _ORDERS in urls:
            lines += [
                "then fetch it with the order_ref from the response:",
                f"  curl {_READER if auth == 'jwt' else ''}{urls[_ORDERS]}/orders/<order_ref>",
                "",
            ]
    lines.append(stop_hint)
    return "\n".join(lines)
