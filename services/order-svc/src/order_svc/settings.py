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

    def callback_url(self) -> str:
        return self.credit_callback_url or f"http://{self.host}:{self.port}/credit/callback"
