#!/usr/bin/env python3
"""Peer for bench_search: the bit-allocation ILP as HAWQ-V3 writes it (its ILP.ipynb), with PuLP
and COIN-OR CBC (Debian python3-pulp, coinor-cbc). One binary variable per (group, item), one
choice per group, one row per budget, minimise the summed omega. Times model building plus
solving, as a user of that notebook waits for it; prints one JSON line.

Usage: ilp_pulp.py INSTANCE.json REPETITIONS
INSTANCE: {"groups": [{"items": [{"omega": w, "cost": [c...]}, ...]}, ...], "limits": [...]}
"""
import json
import statistics
import sys
import time

import pulp


def solve(instance):
    prob = pulp.LpProblem("bit_allocation", pulp.LpMinimize)
    x = []
    for g, group in enumerate(instance["groups"]):
        x.append([pulp.LpVariable(f"x_{g}_{i}", cat="Binary") for i in range(len(group["items"]))])
        prob += pulp.lpSum(x[g]) == 1
    prob += pulp.lpSum(item["omega"] * x[g][i] for g, group in enumerate(instance["groups"])
                       for i, item in enumerate(group["items"]))
    for k, limit in enumerate(instance["limits"]):
        prob += pulp.lpSum(item["cost"][k] * x[g][i] for g, group in enumerate(instance["groups"])
                           for i, item in enumerate(group["items"])) <= limit
    prob.solve(pulp.COIN_CMD(msg=0))
    return pulp.LpStatus[prob.status], pulp.value(prob.objective)


def main():
    instance = json.load(open(sys.argv[1]))
    repetitions = int(sys.argv[2])
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        status, objective = solve(instance)
        times.append(time.perf_counter() - start)
    print(json.dumps({"seconds": statistics.median(times), "status": status,
                      "objective": objective, "pulp": pulp.__version__}))


if __name__ == "__main__":
    main()
