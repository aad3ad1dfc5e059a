"""The iteration loop of one lane of a replica: requests arrive, are admitted, prefilled and decoded.

Events are iterations, not tokens. Between two events (an arrival that could join, a request that finishes) a
lane that only decodes runs iterations of the same sequences whose times differ only by the context each one reads
(`ReplicaCost.decode_run_s`, one vector), so the loop advances all of them at once; an iteration that prefills is
stepped on its own. Admission reserves the KV blocks of a request's whole length (TensorRT-LLM's
``GUARANTEED_NO_EVICT``), so no sequence is ever preempted.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from cosmic.serving.cost import ReplicaCost

COLOCATED, PREFILL, DECODE = "colocated", "prefill", "decode"


@dataclass(frozen=True, slots=True)
class LaneRules:
    """What one lane may run: the scheduler's limits (per lane) and its share of the KV cache."""

    mode: str  # COLOCATED (prefill and decode), PREFILL (prompt and first token only), DECODE (prefilled prompts)
    static: bool
    max_seqs: int
    budget: int
    chunked: bool
    decode_first: bool
    blocks: int
    block_size: int


class Lane:
    """One lane's state and loop (`run`); `first_s`, `finish_s` and `dropped` per request afterwards.

    `context` is each request's prompt (in DECODE mode the prefilled context it arrives with) and `tokens` the
    tokens it generates here (1 in PREFILL mode, the output after the first token in DECODE mode)."""

    def __init__(self, cost: ReplicaCost, rules: LaneRules, arrival_s: np.ndarray, context: np.ndarray,
                 tokens: np.ndarray) -> None:
        self.cost, self.r = cost, rules
        self.arrival, self.context, self.tokens = arrival_s.tolist(), context.tolist(), tokens.tolist()
        n = len(self.arrival)
        self.first_s, self.finish_s = np.full(n, np.nan), np.full(n, np.nan)
        self.dropped = np.zeros(n, dtype=bool)
        self.t = 0.0
        self.next = 0
        self.waiting: deque[int] = deque()
        self.free = rules.blocks
        # running sequences: request index, prompt tokens still to prefill, tokens in the cache, tokens to generate
        self.idx: list[int] = []
        self.pre: list[int] = []
        self.ctx: list[int] = []
        self.left: list[int] = []
        self.prefilling = 0  # running sequences with prompt tokens still to prefill

    def blocks_of(self, i: int) -> int:
        return -(-(self.context[i] + self.tokens[i]) // self.r.block_size)

    def run(self) -> Lane:
        n = len(self.arrival)
        while True:
            self._arrive()
            if not self.idx and not self.waiting:
                if self.next >= n:
                    return self
                self.t = max(self.t, self.arrival[self.next])
                continue
            self._admit()
            if not self.idx:  # nothing runs: the head of the queue (if any) can never be admitted
                if self.waiting:
                    self.dropped[self.waiting.popleft()] = True
                continue
            if self.prefilling:
                self._mixed_step()
            else:
                self._decode_run()

    def _arrive(self) -> None:
        arr, n = self.arrival, len(self.arrival)
        while self.next < n and arr[self.next] <= self.t:
            self.waiting.append(self.next)
            self.next += 1

    def _admit(self) -> None:
        r = self.r
        if r.static and self.idx:
            return
        while self.waiting and len(self.idx) < r.max_seqs:
            i = self.waiting[0]
            b = self.blocks_of(i)
            too_long = r.mode != DECODE and not r.chunked and self.context[i] > r.budget
            if b > r.blocks or too_long:  # more than the whole cache, or a prompt over the token budget (vLLM)
                self.waiting.popleft()
                self.dropped[i] = True
                continue
            if b > self.free:
                return
            self.waiting.popleft()
            self.free -= b
            self.idx.append(i)
            prefilled = r.mode == DECODE
            self.prefilling += not prefilled
            self.pre.append(0 if prefilled else self.context[i])
            self.ctx.append(self.context[i] if prefilled else 0)
            self.left.append(self.tokens[i])

    def _horizon(self) -> float:
        """The next arrival that could join the batch at an iteration boundary (inf when none can)."""
        if self.r.static or self.waiting or len(self.idx) >= self.r.max_seqs or self.next >= len(self.arrival):
            return np.inf
        return float(self.arrival[self.next])

    def _decode_run(self) -> None:
        """Decode iterations of the running sequences up to the next event, priced as one vector."""
        nd = len(self.idx)
        k_fin = min(self.left)
        horizon = self._horizon()
        c0 = sum(self.ctx) + nd  # each new token attends its context and itself
        steps = min(k_fin, 64) if horizon < np.inf else k_fin
        while True:
            ends = self.t + np.cumsum(self.cost.decode_run_s(nd, c0, steps))
            if horizon <= ends[-1] or steps == k_fin:
                break
            steps = min(k_fin, 4 * steps)
        k = steps if horizon > ends[-1] else min(steps, int(np.searchsorted(ends, horizon, side="left")) + 1)
        self.t = float(ends[k - 1])
        self.ctx = [c + k for c in self.ctx]
        self.left = [x - k for x in self.left]
        self._retire()

    def _mixed_step(self) -> None:
        """One iteration that prefills (whole prompts or chunks) with or without the running decodes."""
        chunks, decodes = self._compose()
        cost = self.cost
        sampled = len(decodes) + sum(1 for j, c in chunks if c == self.pre[j])
        tokens = len(decodes) + sum(c for _, c in chunks)
        t = cost.dense_s(tokens, sampled)
        for j, c in chunks:
            t += cost.prefill_attention_s(c, self.ctx[j] + c)
        if decodes:
            t += float(cost.decode_attention_s(len(decodes), sum(self.ctx[j] for j in decodes) + len(decodes)))
        self.t += t
        for j, c in chunks:
            self.pre[j] -= c
            self.ctx[j] += c
            if self.pre[j] == 0:
                self.prefilling -= 1
                self.first_s[self.idx[j]] = self.t
                self.left[j] -= 1
        for j in decodes:
            self.ctx[j] += 1
            self.left[j] -= 1
        self._retire()

    def _compose(self) -> tuple[list[tuple[int, int]], list[int]]:
        """(prefill chunks as (slot, tokens), decode slots) of the next iteration, by the scheduler's rules."""
        r = self.r
        prefills = [j for j, p in enumerate(self.pre) if p > 0]
        decodes = [j for j, p in enumerate(self.pre) if p == 0]
        budget = r.budget
        if r.chunked:
            if r.decode_first:
                decodes = decodes[:budget]
                budget -= len(decodes)
            chunks = []
            for j in prefills:
                if budget <= 0:
                    break
                c = min(self.pre[j], budget)
                chunks.append((j, c))
                budget -= c
            if not r.decode_first:
                decodes = decodes[:budget]
            return chunks, decodes
        if not r.decode_first or r.static:
            decodes = []
        else:
            budget -= len(decodes)
        chunks = []
        for j in prefills:
            if self.pre[j] > budget and (chunks or decodes):
                break
            chunks.append((j, self.pre[j]))
            budget -= self.pre[j]
        return chunks, decodes

    def _retire(self) -> None:
        """Finished sequences leave the batch and give back their blocks."""
        if min(self.left) > 0:
            return
        keep = [j for j, x in enumerate(self.left) if x > 0]
        for j, x in enumerate(self.left):
            if x <= 0:
                i = self.idx[j]
                self.finish_s[i] = self.t
                self.free += self.blocks_of(i)
        self.idx = [self.idx[j] for j in keep]
        self.pre = [self.pre[j] for j in keep]
        self.ctx = [self.ctx[j] for j in keep]
        self.left = [self.left[j] for j in keep]
