"""Streams and queues in `astra-sim` fidelity: how the chunks of one collective share each dimension's queue.

Source: astra-sim ``system/Sys.cc`` (``generate_collective`` makes one stream per chunk, ``insert_stream`` places a
stream in a queue, ``proceed_to_next_vnet_baseline`` moves it to its next phase's queue, ``SchedulerUnit`` starts up to
``active-chunks-per-dimension`` streams per queue).

Queue order: all chunks of one collective get one priority (``get_priority`` is called once per collective), and
``insert_stream`` places a stream behind every running stream and every waiting stream of equal or higher priority,
so within one collective each queue is **first come, first served**: a stream that returns to a dimension for its
all-gather phase waits behind the chunks still queued there for their reduce-scatter, whatever their creation order.
(``scheduling-policy`` LIFO/FIFO only orders different collectives.) When a slot frees,
``SchedulerUnit::notify_stream_removed`` starts the first waiting stream at once.
"""

from __future__ import annotations

import heapq
import math
from collections import deque

import numpy as np

from cosmic.collective.algorithms import Algorithm
from cosmic.collective.astra_core import AstraDim, AstraParams, Phase
from cosmic.collective.astra_tree import tree_finish


def run_streams(phases: tuple[Phase, ...], n_streams: int, active: int, n_queues: int) -> int:
    """Finish time of the last stream when every NPU runs the same schedule (no double binary tree).

    Each queue serves its waiting streams first come, first served (see the module docstring); streams that end a
    phase at the same tick join their next queue in the order they started that phase.
    """
    if not phases:
        return 0
    if len({ph.position for ph in phases}) == 1:
        # one dimension: rounds of `active` chunks
        return -(-n_streams // active) * sum(ph.time_ns for ph in phases)
    waiting: list[deque[int]] = [deque() for _ in range(n_queues)]
    waiting[phases[0].position].extend(range(n_streams))  # created in order, all at time 0
    free = [active] * n_queues
    stage = [0] * n_streams
    events: list[tuple[int, int, int]] = []  # (end of phase, start order, stream)
    started = 0
    last = 0
    now = 0
    while True:
        for q in range(n_queues):
            wq = waiting[q]
            while free[q] and wq:
                s = wq.popleft()
                free[q] -= 1
                heapq.heappush(events, (now + phases[stage[s]].time_ns, started, s))
                started += 1
        if not events:
            return last
        now = events[0][0]
        while events and events[0][0] == now:
            _, _, s = heapq.heappop(events)
            free[phases[stage[s]].position] += 1
            stage[s] += 1
            if stage[s] < len(phases):
                waiting[phases[stage[s]].position].append(s)
            else:
                last = now


def run_tree_single(dim: AstraDim, d: int, n_streams: int, p: AstraParams) -> int:
    """One double-binary-tree dimension: each NPU has its own slots; chunks alternate trees (even: root p-1)."""
    n = dim.npus
    slots = np.zeros((n, p.active_chunks), dtype=np.int64)
    rows = np.arange(n)
    last = 0
    for c in range(n_streams):
        col = slots.argmin(axis=1)
        starts = slots[rows, col]
        fin = tree_finish(dim, d, p, starts, root_max=(c % 2 == 0))
        slots[rows, col] = fin
        last = max(last, int(fin.max()))
    return last


def run_classes(
    phases: tuple[Phase, ...], dims: tuple[AstraDim, ...], n_streams: int, p: AstraParams
) -> int:
    """Per-NPU-class event simulation when tree phases make NPUs drift apart.

    NPUs with the same coordinates in every tree dimension run identical schedules (every other phase only talks
    within such a class), so a class stands for all of them; a tree phase couples the classes along its dimension.
    """
    tree_pos = sorted({ph.position for ph in phases if ph.algorithm is Algorithm.DOUBLE_BINARY_TREE})
    radix = [dims[i].npus for i in tree_pos]
    n_cls = math.prod(radix)
    weights = [math.prod(radix[:k]) for k in range(len(radix))]
    n_q = len(dims)
    waiting: list[list[deque[int]]] = [[deque() for _ in range(n_q)] for _ in range(n_cls)]
    free = [[p.active_chunks] * n_q for _ in range(n_cls)]
    stage = [[0] * n_streams for _ in range(n_cls)]
    # which tree each tree phase uses: ASTRA-sim alternates per dimension in phase-creation order
    counter: dict[int, int] = {}
    root_max: dict[tuple[int, int], bool] = {}
    for s in range(n_streams):
        for k, ph in enumerate(phases):
            if ph.algorithm is Algorithm.DOUBLE_BINARY_TREE:
                c = counter.get(ph.position, 0)
                root_max[(s, k)] = c % 2 == 0
                counter[ph.position] = c + 1
    pending: dict[tuple[int, int, int], dict[int, int]] = {}
    events: list[tuple[int, int, int, int]] = []  # (end of phase, start order, class, stream)
    for c in range(n_cls):
        waiting[c][phases[0].position].extend(range(n_streams))
    started = 0
    last = 0
    now = 0
    dirty = {(c, phases[0].position) for c in range(n_cls)}  # queues whose slots or waiting lists changed
    while True:
        for c, q in sorted(dirty):
            wq = waiting[c][q]
            while free[c][q] and wq:
                s = wq.popleft()
                free[c][q] -= 1
                k = stage[c][s]
                ph = phases[k]
                if ph.algorithm is not Algorithm.DOUBLE_BINARY_TREE:
                    heapq.heappush(events, (now + ph.time_ns, started, c, s))
                    started += 1
                    continue
                t_idx = tree_pos.index(ph.position)
                w = weights[t_idx]
                coord = (c // w) % radix[t_idx]
                key = (s, k, c - coord * w)
                group = pending.setdefault(key, {})
                group[coord] = now
                if len(group) == radix[t_idx]:
                    starts = np.array([group[i] for i in range(radix[t_idx])], dtype=np.int64)
                    fin = tree_finish(dims[ph.position], ph.bytes_in, p, starts, root_max=root_max[(s, k)])
                    for i in range(radix[t_idx]):
                        heapq.heappush(events, (int(fin[i]), started, key[2] + i * w, s))
                        started += 1
                    del pending[key]
        dirty.clear()
        if not events:
            return last
        now = events[0][0]
        while events and events[0][0] == now:
            _, _, c, s = heapq.heappop(events)
            q = phases[stage[c][s]].position
            free[c][q] += 1
            dirty.add((c, q))
            stage[c][s] += 1
            if stage[c][s] < len(phases):
                q = phases[stage[c][s]].position
                waiting[c][q].append(s)
                dirty.add((c, q))
            else:
                last = now

