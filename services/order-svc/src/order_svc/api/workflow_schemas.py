"""Request and response bodies of the workflow rules API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class WorkflowRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    state: str = Field(min_length=1, max_length=32, description="the state the rule acts in")
    condition: str = Field(
        min_length=1, max_length=2000, description="a rule-engine expression over the facts"
    )
    action: Literal["advance", "hold"]
    target: str | None = Field(
        default=None, max_length=32, description="advance: the state to move to"
    )
    reason: str | None = Field(
        default=None,
        max_length=500,
        description='hold: "manual_review (...)"; may name facts in braces, e.g. {total}',
    )
    enabled: bool = True


class WorkflowRulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[WorkflowRuleIn] = Field(max_length=100)


class WorkflowRulesOut(BaseModel):
    rules: list[WorkflowRuleIn]
    #: "stored" (PUT /workflow/rules) or "default" (the deployment's defaults).
    source: Literal["stored", "default"]
    version: int | None = None
    set_by: str | None = None
    set_at: datetime | None = None
    #: The names a condition may use.
    facts: list[str]
