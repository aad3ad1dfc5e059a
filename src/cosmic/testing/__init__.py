"""Helpers for testing code built on cosmic: :func:`check_agent` asserts the search-agent contract."""

from cosmic.testing.agent_contract import check_agent

__all__ = ["check_agent"]
