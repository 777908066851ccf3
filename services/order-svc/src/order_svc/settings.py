from decimal import Decimal

from pydantic import Field

from oms_servicekit.settings import ServiceSettings


class OrderSettings(ServiceSettings):
    port: int = 8001
    db_name: str = "oms_order"

    # -- the credit check (see order_svc.credit) --------------------------------------
    #: The bureau's check endpoint (``CREDIT_CHECK_URL``); empty = no check ("not
    #: configured" is recorded and the order goes straight on to the reservation).
    credit_check_url: str = ""
    #: The whole budget of one check, from the moment the order enters ``credit_check``.
    credit_check_budget_s: float = 30.0
    #: One HTTP attempt (the httpx.Timeout and the per-attempt asyncio.timeout).
    credit_check_attempt_timeout_s: float = 5.0
    credit_check_connect_timeout_s: float = 2.0
    credit_check_max_attempts: int = 5
    credit_check_backoff_initial_s: float = 0.2
    credit_check_backoff_max_s: float = 5.0
    #: Consecutive failed attempts that open the breaker, and its cool-down.
    credit_breaker_threshold: int = 5
    credit_breaker_cooldown_s: float = 30.0
    #: Shared secret of ``POST /credit/callback`` (HMAC-SHA256 of the raw body);
    #: empty = callbacks are refused.
    credit_callback_secret: str = ""
    #: Where the bureau should call back; empty = derived from host and port.
    credit_callback_url: str = ""
    credit_worker_interval_s: float = 0.2
    credit_worker_concurrency: int = 50
    #: How long past the deadline an in-flight call may still finish on its own.
    credit_check_slack_s: float = 1.0
    #: How often one check may be asked when its outcome stays unknown (the worker died
    #: mid-call, or the answer could not be stored); then the watchdog takes over.
    credit_check_max_asks: int = 3
    #: Which orders need the check (order_svc.domain.credit_policy); the others (prepaid
    #: retail) skip it. Every order of these channels (distribution and B2B platforms),
    #: e.g. ``CREDIT_CHECK_CHANNELS='["distributor", "b2b"]'``;
    credit_check_channels: list[str] = ["distributor", "b2b"]
    #: every order with these payment terms (``OrderReceived.payment_terms``), any channel;
    credit_check_payment_terms: list[str] = ["on_account", "cash_on_delivery"]
    #: every order whose total is above this (in the order's currency); empty = none;
    credit_check_amount_over: Decimal | None = Decimal("5000")
    #: or every order, whatever the rule says (the behaviour before the rule existed).
    credit_check_every_order: bool = False
    #: Calls under way to the bureau at most; an attempt's timeout starts once its
    #: request may go out, so time queued behind the others never counts against it.
    credit_bureau_concurrency: int = Field(default=16, ge=1)

    # -- the order watchdog (see order_svc.watchdog) ----------------------------------
    #: A paid order with no stock answer this long after OrderPaid is asked again.
    stall_after_s: float = 120.0
    #: Re-sends (OrderPaid, or a re-queued credit check) before the order is ``stalled``.
    stall_max_resends: int = 3
    watchdog_interval_s: float = 15.0
    watchdog_batch: int = 200

    # -- SLA clocks and alerts (see order_svc.sla) ------------------------------------
    #: Overrides of the SLA policy, merged over the defaults (review: normal 2 h, urgent
    #: 30 min, every channel): stage -> channel ("*" = any) -> order class -> seconds,
    #: e.g. ``SLA_DEADLINES_S='{"review": {"live": {"urgent": 600}}}'``.
    sla_deadlines_s: dict[str, dict[str, dict[str, float]]] = {}
    #: How often the scheduler looks for clocks owing an alert, and how many per batch.
    sla_scheduler_interval_s: float = 1.0
    sla_scheduler_batch_size: int = 200

    # -- smart routing (see order_svc.domain.routing and order_svc.routing) -------------
    #: Score weights: share of the order a warehouse holds, nearness, shipping cost.
    routing_weight_stock: float = 0.5
    routing_weight_distance: float = 0.3
    routing_weight_cost: float = 0.2
    #: Whether an order may ship in several parcels; per channel, e.g.
    #: ``ROUTING_SPLIT_BY_CHANNEL='{"live": false}'``, over the default.
    routing_allow_split: bool = True
    routing_split_by_channel: dict[str, bool] = {}
    #: Requirements only a warehouse with the capability of the same name can meet.
    routing_capability_requirements: list[str] = ["cold_chain"]
    #: Extra or corrected region centres (region -> [latitude, longitude]).
    routing_region_centres: dict[str, tuple[float, float]] = {}
    #: How often an order is re-routed when inventory refuses its pinned warehouse.
    routing_max_attempts: int = 3

    # -- workflow rules (see order_svc.domain.workflow and order_svc.workflow) -----------
    #: Orders whose total is above this (in the order's currency) are held for manual
    #: review by the default ``hold_amount`` rule (the fact ``hold_amount_over``).
    hold_amount_over: Decimal = Decimal("10000")
    #: A JSON file with the rule set (a list of rules) used while none is stored through
    #: ``PUT /workflow/rules``; empty = the shipped defaults.
    workflow_rules_path: str = ""

    # -- the consistency check with inventory-svc (see order_svc.service_layer.consistency)
    #: inventory-svc's base URL (``INVENTORY_SVC_URL``, which the launcher, compose and
    #: the Kubernetes config give every service).
    inventory_svc_url: str = "http://127.0.0.1:8002"
    #: Changes younger than this are in flight, not disagreements (``GET /consistency``
    #: takes ``grace_s`` to override it).
    consistency_grace_s: float = Field(default=30.0, ge=0)
    #: How often the periodic check runs (one replica at a time) and sets its gauge.
    consistency_interval_s: float = Field(default=60.0, gt=0)
    #: Orders per page read from inventory, and the timeout of one page.
    consistency_page_size: int = Field(default=2000, ge=1, le=5000)
    consistency_timeout_s: float = Field(default=10.0, gt=0)

    def callback_url(self) -> str:
        return self.credit_callback_url or f"http://{self.host}:{self.port}/credit/callback"
