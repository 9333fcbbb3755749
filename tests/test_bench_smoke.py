"""CI runs each benchmark in a tiny configuration so that it keeps working."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_api_submit_benchmark_smoke():
    result = subprocess.run([sys.executable, "bench/api_submit.py", "--smoke"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ratio = re.search(r"ratio API/raw throughput \(median of rounds\): (\d+\.\d+)", result.stdout)
    assert ratio and float(ratio.group(1)) > 0, result.stdout
    assert re.search(r"raw PutItem\s+1\s+\d+\.\d", result.stdout)
    # req/s, p50, p99, CPU of client, web and moto, machine busy cores and steal
    assert re.search(r"^API POST\s+1(\s+\d+\.\d+){8}$", result.stdout, re.M), result.stdout
    assert re.search(r"ratio per round: \d+\.\d\d \d+\.\d\d$", result.stdout, re.M), result.stdout


def test_consumer_benchmark_smoke():
    result = subprocess.run([sys.executable, "bench/consumer.py", "--smoke"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = re.findall(r"^(empty table|[\d,]+ items)\s+\d+\s+(\d+\.\d)\s+(\d+\.\d)\s+(\d+\.\d\d)$", result.stdout, re.M)
    assert len(rows) == 2, result.stdout
    assert all(float(consumer) > 0 and float(floor) > 0 for _, consumer, floor, _ in rows)
    assert "per-record cost, full vs empty table" in result.stdout


def test_consumer_benchmark_holds_smoke():
    # A burst limit below the 10 submissions each player makes, so that the
    # held path runs too.
    result = subprocess.run([sys.executable, "bench/consumer.py", "--holds", "--smoke", "--hold-burst-count", "5"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = re.findall(r"^\s+\d+\s+(on|off)\s+(\d+\.\d)\s+(\d+\.\d)\s+\d+\.\d\d\s+(\d+)\s+(\d+)$", result.stdout, re.M)
    assert [first for first, *_ in rows] == ["on", "off"], result.stdout
    assert all(float(on) > 0 and float(off) > 0 and int(held_on) > 0 and held_off == "0"
               for _, on, off, held_on, held_off in rows), result.stdout
    assert re.search(r"ratio on/off \(median of rounds\): \d+\.\d\d", result.stdout), result.stdout


def test_rescore_benchmark_smoke():
    result = subprocess.run([sys.executable, "bench/rescore.py", "--smoke"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # players, affected, preview s, bare s, ratio: one row per size
    sizes = re.findall(r"^\s+(\d+)\s+(\d+)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d\d)$", result.stdout, re.M)
    assert [players for players, *_ in sizes] == ["100", "200"], result.stdout
    assert all(0 < int(affected) <= int(players) and float(preview) > 0 and float(bare) > 0
               for players, affected, preview, bare, _ in sizes), result.stdout
    assert re.search(r"^goal at 200 players: .*: (met|NOT met)", result.stdout, re.M), result.stdout
    # round, adjustments, write s, fold s, adjustments/s, fold rec/s, floor rec/s, ratio
    applies = re.findall(r"^\s+1\s+(\d+)(?:\s+\d+\.\d){5}\s+\d+\.\d\d$", result.stdout, re.M)
    assert len(applies) == 1 and int(applies[0]) > 0, result.stdout
    assert re.search(r"apply throughput \(medians of rounds\): \d+\.\d adjustments/s .* floor of \d+\.\d rec/s: "
                     r"ratio \d+\.\d\d", result.stdout), result.stdout


def test_latency_benchmark_smoke():
    result = subprocess.run([sys.executable, "bench/latency.py", "--smoke"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"POST -> websocket message\s+\d+\s+\d+\.\d", result.stdout), result.stdout
    assert re.search(r"floor: PutItem -> GetRecords\s+\d+\s+\d+\.\d", result.stdout), result.stdout
    assert "lost (no message within 10 s): 0" in result.stdout


@pytest.mark.parametrize(("servers", "clients"), [(1, "20"), (2, "40")])
def test_fanout_benchmark_smoke(servers, clients):
    result = subprocess.run([sys.executable, "bench/fanout.py", "--smoke", "--servers", str(servers)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = re.findall(r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+\.\d", result.stdout, re.M)
    assert [(clients_, missing) for clients_, _, missing in rows] == [("1", "0"), (clients, "0")], result.stdout
    assert f"and {servers} uvicorn process(es)" in result.stdout, result.stdout


def test_median_interval_uses_the_binomial_order_statistics():
    from bench.api_submit import median_interval

    # n = 10: 2nd smallest to 2nd largest holds the median with 1 - 2 * 11/1024.
    low, high, coverage = median_interval([0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4, 0.5, 0.45])
    assert (low, high) == (0.2, 0.8)
    assert coverage == pytest.approx(1 - 2 * 11 / 1024)
    # n = 20: the 6th and the 15th, as in the usual tables.
    assert median_interval([float(i) for i in range(20)])[:2] == (5.0, 14.0)
    assert median_interval([0.5, 0.6]) is None  # too few rounds for 95%


def test_leaderboard_reads_benchmark_smoke():
    result = subprocess.run([sys.executable, "bench/leaderboard_reads.py", "--smoke"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = re.findall(r"^(top-100|me-and-around)\s+(api|bare)(?:\s+(\d+\.\d\d)){4}$", result.stdout, re.M)
    assert [(read, side) for read, side, _ in rows] == [("top-100", "api"), ("top-100", "bare"),
                                                        ("me-and-around", "api"), ("me-and-around", "bare")], \
        result.stdout
    assert all(float(p) > 0 for *_, p in rows), result.stdout
    assert len(re.findall(r"api p99 / bare p99: \d+\.\d\dx", result.stdout)) == 2, result.stdout


def test_rebuild_benchmark_smoke():
    result = subprocess.run([sys.executable, "bench/rebuild.py", "--smoke"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^boards_rebuild\s+\d+\.\d\s+[\d,]+$", result.stdout, re.M), result.stdout
    assert re.search(r"^floor \(bare ZADD/HSET\)\s+\d+\.\d\s+[\d,]+$", result.stdout, re.M), result.stdout
    assert re.search(r"rebuild / floor time: \d+\.\d\dx", result.stdout), result.stdout
