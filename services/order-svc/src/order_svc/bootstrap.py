"""The composition root of order-svc: settings -> runtime -> app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from oms_servicekit.audit import audit_router
from oms_servicekit.http import create_app
from oms_servicekit.runtime import PeriodicJob, ServiceRuntime
from oms_servicekit.serve import serve
from order_svc.adapters.credit_bureau import BureauPolicy, CreditBureauClient
from order_svc.api.consistency_routes import router as consistency_router
from order_svc.api.exception_routes import router as exception_router
from order_svc.api.operator_routes import router as operator_router
from order_svc.api.partner_routes import router as partner_router
from order_svc.api.routes import router
from order_svc.api.routing_routes import router as routing_router
from order_svc.api.sla_routes import router as sla_router
from order_svc.api.workflow_routes import router as workflow_router
from order_svc.credit import CreditCheckWorker, credit_config
from order_svc.domain.sla import SlaPolicy
from order_svc.handlers import consumer_specs
from order_svc.metrics import SCRAPE_QUERIES
from order_svc.routing import routing_config
from order_svc.service_layer.consistency import ConsistencyCheck
from order_svc.settings import OrderSettings
from order_svc.sla import SlaScheduler, configure
from order_svc.watchdog import watchdog_job
from order_svc.workflow import workflow_config

SERVICE = "order-svc"
MIGRATIONS = Path(__file__).parent / "migrations"


def bureau_policy(settings: OrderSettings) -> BureauPolicy:
    return BureauPolicy(
        url=settings.credit_check_url,
        budget_s=settings.credit_check_budget_s,
        attempt_timeout_s=settings.credit_check_attempt_timeout_s,
        connect_timeout_s=settings.credit_check_connect_timeout_s,
        max_attempts=settings.credit_check_max_attempts,
        backoff_initial_s=settings.credit_check_backoff_initial_s,
        backoff_max_s=settings.credit_check_backoff_max_s,
        breaker_threshold=settings.credit_breaker_threshold,
        breaker_cooldown_s=settings.credit_breaker_cooldown_s,
        concurrency=settings.credit_bureau_concurrency,
    )


def build_app(settings: OrderSettings | None = None) -> FastAPI:
    settings = settings or OrderSettings()
    credit = credit_config(settings)
    routing = routing_config(settings)
    # Checked here, so a bad WORKFLOW_RULES_PATH stops the start-up.
    workflow = workflow_config(settings)
    jobs: list[PeriodicJob] = []
    runtime: ServiceRuntime

    if credit.enabled:
        # The worker is a long-lived task (run() loops until the runtime cancels it);
        # the periodic wrapper only restarts it should it ever return.
        async def run_credit_worker() -> None:
            worker = CreditCheckWorker(
                runtime.uow,
                CreditBureauClient(bureau_policy(settings)),
                interval_s=settings.credit_worker_interval_s,
                concurrency=settings.credit_worker_concurrency,
                slack_s=settings.credit_check_slack_s,
                max_asks=settings.credit_check_max_asks,
                routing=routing,
                workflow=workflow,
            )
            await worker.run()

        jobs.append(PeriodicJob("credit-check-worker", 0.1, run_credit_worker))

    # The SLA policy is checked here, so a bad SLA_DEADLINES_S stops the start-up.
    configure(SlaPolicy.with_overrides(settings.sla_deadlines_s))

    async def run_sla_scheduler() -> None:
        scheduler = SlaScheduler(runtime.uow, batch_size=settings.sla_scheduler_batch_size)
        await scheduler.run_once()

    jobs.append(PeriodicJob("sla-scheduler", settings.sla_scheduler_interval_s, run_sla_scheduler))

    # No order waits forever on another service: asked again, then queued as stalled.
    jobs.append(
        PeriodicJob(
            "order-watchdog",
            settings.watchdog_interval_s,
            watchdog_job(lambda: runtime.uow(), settings),
            exclusive=True,
        )
    )

    # One replica at a time: the check reads every open reservation from inventory.
    consistency = ConsistencyCheck.from_settings(settings)

    async def run_consistency_check() -> None:
        await consistency.run_and_record(runtime.uow, SERVICE)

    jobs.append(
        PeriodicJob(
            "consistency-check",
            settings.consistency_interval_s,
            run_consistency_check,
            exclusive=True,
        )
    )

    runtime = ServiceRuntime(
        settings,
        service_name=SERVICE,
        migrations_dir=MIGRATIONS,
        consumers=consumer_specs(credit, routing, workflow),
        periodic_jobs=jobs,
    )
    app = create_app(
        title=SERVICE,
        runtime=runtime,
        routers=[
            router,
            operator_router,
            sla_router,
            exception_router,
            routing_router,
            workflow_router,
            partner_router,
            consistency_router,
            audit_router("orders:read"),
        ],
        metrics=SCRAPE_QUERIES,
    )
    app.state.settings = settings
    app.state.consistency = consistency
    return app


def main() -> None:
    settings = OrderSettings()
    serve(build_app(settings), settings, SERVICE)
